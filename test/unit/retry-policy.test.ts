import { describe, expect, it } from 'vitest';
import { backoffDelayMs, decideRetry } from '../../src/domain/retry-policy.js';

const policy = { baseMs: 1000, maxMs: 8000 };

describe('backoffDelayMs', () => {
  it('doubles per attempt within ±20% jitter and stops at the cap', () => {
    expect(backoffDelayMs(policy, 1, () => 0.5)).toBe(1000);
    expect(backoffDelayMs(policy, 2, () => 0.5)).toBe(2000);
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(3200);
    expect(backoffDelayMs(policy, 3, () => 1)).toBe(4800);
    expect(backoffDelayMs(policy, 10, () => 0.5)).toBe(8000);
  });
});

describe('decideRetry', () => {
  const base = { attempt: 1, maxAttempts: 4, policy, random: () => 0.5 };

  it('fails permanent errors at once', () => {
    expect(decideRetry({ ...base, errorClass: 'permanent' })).toEqual({ action: 'fail' });
  });

  it('retries retryable and credential errors with backoff', () => {
    expect(decideRetry({ ...base, errorClass: 'retryable', attempt: 2 })).toEqual({ action: 'retry', delayMs: 2000 });
    expect(decideRetry({ ...base, errorClass: 'credential' })).toEqual({ action: 'retry', delayMs: 1000 });
  });

  it("waits at least the provider's Retry-After on a rate limit", () => {
    expect(decideRetry({ ...base, errorClass: 'rate_limited', retryAfterMs: 5000 })).toEqual({
      action: 'retry',
      delayMs: 5000,
    });
    expect(decideRetry({ ...base, errorClass: 'rate_limited', retryAfterMs: 10 })).toEqual({
      action: 'retry',
      delayMs: 1000,
    });
  });

  it('fails once the last attempt is used, whatever the error', () => {
    expect(decideRetry({ ...base, errorClass: 'retryable', attempt: 4 })).toEqual({ action: 'fail' });
    expect(decideRetry({ ...base, errorClass: 'rate_limited', attempt: 4 })).toEqual({ action: 'fail' });
  });
});
