import type { ProviderErrorClass } from '../providers/errors.js';

/** What the worker does after an attempt fails. */
export type RetryDecision = { action: 'retry'; delayMs: number } | { action: 'fail' };

export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with ±20% jitter, so a burst of failures does not come back as a burst:
 * base·2^(attempt−1), capped, and never sooner than the provider's own Retry-After.
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.8 + 0.4 * random()));
}

export function decideRetry(input: {
  errorClass: ProviderErrorClass;
  attempt: number;
  maxAttempts: number;
  retryAfterMs?: number | undefined;
  policy: RetryPolicy;
  random?: () => number;
}): RetryDecision {
  if (input.attempt >= input.maxAttempts) return { action: 'fail' };
  switch (input.errorClass) {
    case 'permanent':
      return { action: 'fail' };
    case 'retryable':
    case 'credential':
      // With one credential per provider (for now) a rejected credential is retried after a
      // pause; the credential pool will rotate to another one instead.
      return { action: 'retry', delayMs: backoffDelayMs(input.policy, input.attempt, input.random) };
    case 'rate_limited':
      return {
        action: 'retry',
        delayMs: Math.max(input.retryAfterMs ?? 0, backoffDelayMs(input.policy, input.attempt, input.random)),
      };
    default: {
      const unreachable: never = input.errorClass;
      throw new Error(`unknown error class ${String(unreachable)}`);
    }
  }
}
