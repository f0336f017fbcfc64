import { ConfigError, type Env } from './env.js';

/**
 * EASEL_PRICES (issue 7): JSON keyed by `provider` or `provider/model`, each value exactly one of
 * `{"per_image": n}`, `{"per_second": n}` or `{"per_task": n}` in credits. Shown at
 * `GET /v1/providers` and charged by src/billing (docs/billing.md).
 */
export type Price = { per_image: number } | { per_second: number } | { per_task: number };
export type Prices = Readonly<Record<string, Price>>;

const UNITS = ['per_image', 'per_second', 'per_task'] as const;
const KEY = /^[a-z0-9][a-z0-9-]*(\/[^\s/][^\s]*)?$/;

export function readPrices(env: Env, name = 'EASEL_PRICES'): Prices {
  const raw = env[name]?.trim();
  if (!raw) return Object.freeze({});
  const fail = (why: string): never => {
    throw new ConfigError(
      `${name} is not valid: ${why}. Expected JSON such as {"replicate": {"per_second": 0.01}, "openai/gpt-image-1": {"per_image": 4}}`,
    );
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return fail('it is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('it is not a JSON object');
  const prices: Record<string, Price> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!KEY.test(key)) fail(`the key ${JSON.stringify(key)} is not a provider id or provider/model`);
    const entries = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.entries(value) : [];
    const [unit, amount] = entries[0] ?? [];
    if (entries.length !== 1 || !(UNITS as readonly string[]).includes(unit as string)) {
      fail(`${JSON.stringify(key)} must have exactly one of ${UNITS.join(', ')}`);
    }
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      fail(`${JSON.stringify(key)}.${unit} must be a number of credits, 0 or more`);
    }
    // Billing keeps integer micro-credits: a finer price could not be charged exactly.
    if (Math.round((amount as number) * 1e6) / 1e6 !== amount) {
      fail(`${JSON.stringify(key)}.${unit} has more than 6 decimals (prices are kept in micro-credits)`);
    }
    prices[key] = { [unit as string]: amount } as Price;
  }
  return Object.freeze(prices);
}

/** The model's own price, else its provider's, else none (free). */
export function priceOf(prices: Prices, provider: string, model: string): Price | null {
  return prices[`${provider}/${model}`] ?? prices[provider] ?? null;
}
