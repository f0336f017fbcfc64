/**
 * The ways a provider call can fail. Adapters throw exactly these; the worker turns them into
 * a decision in one place (`src/worker/run-attempt.ts` with `src/domain/retry-policy.ts`).
 *
 * With a credential from the pool, `rate_limited` and `credential` are about the credential,
 * not the task: the credential cools down or is disabled, and the task goes back to the queue
 * for another credential without spending an attempt.
 */
export type ProviderErrorClass = 'retryable' | 'rate_limited' | 'credential' | 'permanent';

export abstract class ProviderError extends Error {
  abstract readonly errorClass: ProviderErrorClass;
  /** Stable machine code stored on the task, e.g. `PROVIDER_UNAVAILABLE`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Worth trying again later: network trouble, timeouts, 5xx, malformed answers. */
export class RetryableError extends ProviderError {
  readonly errorClass = 'retryable' as const;
}

/**
 * The provider said "slow down" (429). The credential cools down for `retryAfterMs` (the
 * provider's Retry-After) or the configured default.
 */
export class RateLimitedError extends ProviderError {
  readonly errorClass = 'rate_limited' as const;
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown; code?: string },
  ) {
    super(options?.code ?? 'PROVIDER_RATE_LIMITED', message, options);
  }
}

/**
 * The credential's quota or credit is used up (402, "quota exceeded"). Without a hint of when
 * it comes back, the credential rests until its next daily reset.
 */
export class QuotaExceededError extends RateLimitedError {
  constructor(message: string, retryAfterMs?: number, options?: { cause?: unknown }) {
    super(message, retryAfterMs, { ...options, code: 'PROVIDER_QUOTA_EXCEEDED' });
  }
}

/** The provider refused this credential (401, revoked token): it is disabled with the message as reason. */
export class CredentialError extends ProviderError {
  readonly errorClass = 'credential' as const;
}

/** Trying again cannot help: invalid input, content policy, unknown model. */
export class PermanentError extends ProviderError {
  readonly errorClass = 'permanent' as const;
}
