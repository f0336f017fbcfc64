/**
 * The four ways a provider call can fail. Adapters throw exactly these; the worker turns them
 * into a retry decision in one place (`src/domain/retry-policy.ts`).
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

/** Worth trying again later: network trouble, timeouts, 5xx. */
export class RetryableError extends ProviderError {
  readonly errorClass = 'retryable' as const;
}

/** The provider said "slow down"; `retryAfterMs` is its hint when it gave one. */
export class RateLimitedError extends ProviderError {
  readonly errorClass = 'rate_limited' as const;
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super('PROVIDER_RATE_LIMITED', message, options);
  }
}

/** This credential is unusable now (auth, quota); another credential may work. */
export class CredentialError extends ProviderError {
  readonly errorClass = 'credential' as const;
}

/** Trying again cannot help: invalid input, content policy, unknown model. */
export class PermanentError extends ProviderError {
  readonly errorClass = 'permanent' as const;
}
