import { ConfigError, type Env } from './env.js';

/**
 * EASEL_MIN_BALANCE: credits a user must have available (balance minus open holds) to start a
 * priced task, besides covering its hold; 0 by default. Unpriced tasks never need it. Kept in
 * micro-credits, like every amount in billing.
 */
export function readMinBalanceMicro(env: Env, name = 'EASEL_MIN_BALANCE'): number {
  const raw = env[name]?.trim();
  if (!raw) return 0;
  const credits = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(credits) || credits > 1e9) {
    throw new ConfigError(
      `${name} must be a number of credits, 0 or more (such as 1 or 0.5), not ${JSON.stringify(raw)}`,
    );
  }
  const micro = Math.round(credits * 1e6);
  if (micro / 1e6 !== credits) {
    throw new ConfigError(`${name} has more than 6 decimals (credits are kept in micro-credits): ${raw}`);
  }
  return micro;
}
