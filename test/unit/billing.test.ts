import { describe, expect, it } from 'vitest';
import { planHold, PER_SECOND_DEFAULT_SECONDS } from '../../src/billing/estimate.js';
import { toCredits, toMicro } from '../../src/billing/money.js';
import { readMinBalanceMicro } from '../../src/config/billing.js';
import { ConfigError } from '../../src/config/env.js';
import { readPrices } from '../../src/config/prices.js';

const prices = readPrices({
  EASEL_PRICES: JSON.stringify({
    replicate: { per_second: 0.01 },
    'openai/gpt-image-1': { per_image: 4 },
    sketch: { per_task: 0 },
    'hf/flux': { per_task: 0.5 },
  }),
});
const noHistory = () => null;

describe('planHold', () => {
  it('is null for an unpriced task, and for one priced at 0', () => {
    expect(planHold(prices, [{ provider: 'huggingface', model: 'x', n: 1 }], noHistory)).toBeNull();
    expect(planHold(prices, [{ provider: 'sketch', model: 'sketch-v1', n: 1 }], noHistory)).toBeNull();
  });

  it('holds per_image × n and per_task once, in micro-credits, with the prices frozen', () => {
    expect(planHold(prices, [{ provider: 'openai', model: 'gpt-image-1', n: 3 }], noHistory)).toEqual({
      amount: 12_000_000,
      prices: { 'openai/gpt-image-1': { unit: 'per_image', micro: 4_000_000 } },
    });
    expect(planHold(prices, [{ provider: 'hf', model: 'flux', n: 4 }], noHistory)?.amount).toBe(500_000);
  });

  it('estimates per_second from the recent median, with a floor, and a default without history', () => {
    const target = [{ provider: 'replicate', model: 'flux', n: 1 }];
    expect(planHold(prices, target, noHistory)?.amount).toBe(10_000 * PER_SECOND_DEFAULT_SECONDS);
    expect(planHold(prices, target, () => 42.5)?.amount).toBe(425_000);
    expect(planHold(prices, target, () => 0.3)?.amount).toBe(100_000);
  });

  it('holds the most any route target would cost, freezing every priced target', () => {
    const plan = planHold(
      prices,
      [
        { provider: 'hf', model: 'flux', n: 1 },
        { provider: 'openai', model: 'gpt-image-1', n: 1 },
        { provider: 'sketch', model: 'sketch-v1', n: 1 },
      ],
      noHistory,
    );
    expect(plan?.amount).toBe(4_000_000);
    expect(Object.keys(plan!.prices).sort()).toEqual(['hf/flux', 'openai/gpt-image-1']);
  });
});

describe('credits and micro-credits', () => {
  it('converts exactly, refusing what is not a whole micro-credit', () => {
    expect(toMicro(0.000001)).toBe(1);
    expect(toMicro(-2.5)).toBe(-2_500_000);
    expect(toMicro(0.1 + 0.2)).toBeNull();
    expect(toMicro(1e-7)).toBeNull();
    expect(toMicro(Number.NaN)).toBeNull();
    expect(toMicro(2e9)).toBeNull();
    expect(toCredits(123_450)).toBe(0.12345);
  });

  it('reads EASEL_MIN_BALANCE, refusing negatives, words and too many decimals', () => {
    expect(readMinBalanceMicro({})).toBe(0);
    expect(readMinBalanceMicro({ EASEL_MIN_BALANCE: '1' })).toBe(1_000_000);
    expect(readMinBalanceMicro({ EASEL_MIN_BALANCE: '0.25' })).toBe(250_000);
    for (const bad of ['-1', 'one', '1e3', '0.0000001']) {
      expect(() => readMinBalanceMicro({ EASEL_MIN_BALANCE: bad }), bad).toThrow(ConfigError);
    }
  });
});
