import { errorForStatus, parseRetryAfterMs, readErrorDetail } from '../http.js';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  type ProviderError,
} from '../errors.js';

/**
 * Hugging Face's answers about money come in several words: 402 "You have exceeded your monthly
 * included credits for Inference Providers…", and quota wording on other statuses. Any of them
 * means this token is spent until its credits come back, not that the request is wrong.
 */
const QUOTA_WORDS = /exceeded your monthly included credits|quota|pre-?paid credits|payment required/i;

/** How the Hub words a 403 for a model the token may not use (gated repos, restricted access). */
const GATED_WORDS = /gated|restricted|access to model|request access|not in the authorized list/i;

/** The body of a "model is loading" 503 (the serverless API's historic shape). */
export interface LoadingAnswer {
  error: string;
  estimatedTimeMs: number;
}

/** `{"error": "Model x is currently loading", "estimated_time": 20.5}` → the wait, else undefined. */
export function parseLoading(text: string): LoadingAnswer | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; estimated_time?: unknown };
    const seconds = Number(body.estimated_time);
    if (typeof body.error !== 'string' || !Number.isFinite(seconds) || seconds < 0) return undefined;
    if (!/loading/i.test(body.error)) return undefined;
    return { error: body.error, estimatedTimeMs: Math.round(seconds * 1000) };
  } catch {
    return undefined;
  }
}

/**
 * A failed router answer as a provider error: quota wording first (whatever the status), then
 * 401/403 the token, 429 slow down, 5xx retry, other 4xx the request (see `errorForStatus`).
 */
export async function huggingFaceError(response: Response, what: string): Promise<ProviderError> {
  const detail = await readErrorDetail(response);
  const message = `${what}: HTTP ${response.status}: ${detail}`;
  const retryAfterMs = parseRetryAfterMs(response.headers);
  if (response.status === 402 || QUOTA_WORDS.test(detail)) return new QuotaExceededError(message, retryAfterMs);
  if (response.status === 429) return new RateLimitedError(message, retryAfterMs);
  // A gated or restricted model answers 403 to a token that works for every other model:
  // that is this request's problem, and disabling the token would stop all its other work.
  if (response.status === 403 && GATED_WORDS.test(detail)) return new PermanentError('PROVIDER_REJECTED', message);
  if (response.status === 401 || response.status === 403) {
    return new CredentialError('PROVIDER_CREDENTIAL_REJECTED', message);
  }
  return errorForStatus(response.status, response.headers, message);
}
