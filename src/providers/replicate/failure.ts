import { PermanentError, RetryableError, type ProviderError } from '../errors.js';

/**
 * A prediction that ended `failed` carries only free text in `error` (a Python exception's
 * message, usually). Only text that plainly says the request itself is unacceptable is
 * permanent: a content-policy refusal or an input the model rejects would fail identically
 * on every retry. Everything else — CUDA out of memory, a crashed container, a timeout,
 * wording we have never seen — is retryable, because failing a task for a transient fault costs
 * the user more than one more paid attempt that fails the same way.
 */
const TRANSIENT = [/out of memory/i, /\bOOM\b/, /CUDA error/i, /timed? ?out/i, /connection/i, /unavailable/i];
const PERMANENT = [
  /\bNSFW\b/i,
  /safety (checker|filter)/i,
  /content (policy|moderation)/i,
  /flagged as sensitive/i,
  /\bsensitive\b/i,
  /invalid (input|value|prompt|argument)/i,
  /validation error/i,
  /is not a valid/i,
  /must be (less|greater|between|one of|at (least|most))/i,
  /is not one of/i,
];

export function errorForFailedPrediction(id: string, error: unknown): ProviderError {
  const text = typeof error === 'string' ? error.replace(/\s+/g, ' ').trim() : '';
  const shown = text === '' ? 'no reason given' : text.length > 300 ? `${text.slice(0, 300)}…` : text;
  const message = `replicate: prediction ${id} failed: ${shown}`;
  if (TRANSIENT.some((pattern) => pattern.test(text))) return new RetryableError('PROVIDER_UNAVAILABLE', message);
  if (PERMANENT.some((pattern) => pattern.test(text))) return new PermanentError('PROVIDER_REJECTED', message);
  return new RetryableError('PROVIDER_UNAVAILABLE', message);
}
