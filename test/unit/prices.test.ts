import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/config.js';
import { priceOf, readPrices } from '../../src/config/prices.js';
import { availabilityOf } from '../../src/credentials/availability.js';

describe('EASEL_PRICES', () => {
  it('reads prices by provider and provider/model; the model wins', () => {
    const prices = readPrices({
      EASEL_PRICES:
        '{"replicate": {"per_second": 0.01}, "openai/gpt-image-1": {"per_image": 4}, "sketch": {"per_task": 0}}',
    });
    expect(priceOf(prices, 'replicate', 'any')).toEqual({ per_second: 0.01 });
    expect(priceOf(prices, 'openai', 'gpt-image-1')).toEqual({ per_image: 4 });
    expect(priceOf(prices, 'openai', 'dall-e-3')).toBeNull();
    expect(priceOf(prices, 'sketch', 'sketch-v1')).toEqual({ per_task: 0 });
    expect(readPrices({})).toEqual({});
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['two units', '{"a": {"per_image": 1, "per_task": 2}}', /exactly one of per_image, per_second, per_task/],
    ['an unknown unit', '{"a": {"per_minute": 1}}', /exactly one of/],
    ['a negative amount', '{"a": {"per_image": -1}}', /0 or more/],
    ['a string amount', '{"a": {"per_image": "1"}}', /number of credits/],
    ['finer than micro-credits', '{"a": {"per_second": 0.0000001}}', /more than 6 decimals/],
    ['a bad key', '{"Not A Provider": {"per_image": 1}}', /not a provider id/],
  ])('refuses %s with a ConfigError naming the variable', (_name, value, message) => {
    expect(() => loadConfig({ EASEL_PRICES: value })).toThrow(ConfigError);
    expect(() => readPrices({ EASEL_PRICES: value })).toThrow(message);
    expect(() => readPrices({ EASEL_PRICES: value })).toThrow(/^EASEL_PRICES is not valid/);
  });
});

describe('availabilityOf', () => {
  const counts = (overrides: Partial<Parameters<typeof availabilityOf>[0]>) => ({
    provider: 'p',
    total: 1,
    active: 0,
    cooling_down: 0,
    exhausted: 0,
    disabled: 0,
    next_cooldown_end: null,
    next_daily_reset: null,
    ...overrides,
  });
  const soon = new Date('2026-01-01T10:00:00Z');
  const later = new Date('2026-01-02T00:00:00Z');

  it('names the reason that ends first', () => {
    expect(availabilityOf(counts({ total: 0 }), true).reason).toBe('no_credentials');
    expect(availabilityOf(counts({ active: 1 }), false).reason).toBe('secret_key_missing');
    expect(availabilityOf(counts({ active: 1 }), true)).toEqual({
      available: true,
      reason: null,
      availableAgainAt: null,
    });
    expect(availabilityOf(counts({ disabled: 1 }), true)).toEqual({
      available: false,
      reason: 'all_disabled',
      availableAgainAt: null,
    });
    expect(availabilityOf(counts({ next_cooldown_end: soon, next_daily_reset: later }), true)).toEqual({
      available: false,
      reason: 'cooling_down',
      availableAgainAt: soon,
    });
    expect(availabilityOf(counts({ next_cooldown_end: later, next_daily_reset: soon }), true)).toEqual({
      available: false,
      reason: 'daily_limit_reached',
      availableAgainAt: soon,
    });
  });
});
