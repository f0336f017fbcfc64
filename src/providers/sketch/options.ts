import { Type } from '@sinclair/typebox';
import { PermanentError, type ProviderErrorClass } from '../errors.js';

/** `provider_options` the sketch provider accepts: latency and faults on demand. */
export interface SketchOptions {
  /** Total time the generation takes, spread across the steps. 0 = no timer at all. */
  delayMs: number;
  /** Fail in this class after the delay… */
  fail?: ProviderErrorClass;
  /** …but only while the attempt number is at most this (then succeed). Unset: every attempt. */
  failAttempts?: number;
  /** The Retry-After hint a `rate_limited` failure carries. */
  retryAfterMs?: number;
}

const FAIL_CLASSES: readonly ProviderErrorClass[] = ['retryable', 'rate_limited', 'credential', 'permanent'];
const KNOWN = new Set(['delay_ms', 'fail', 'fail_attempts', 'retry_after_ms']);

/**
 * The same rules as `parseSketchOptions`, as the JSON Schema the API checks at submit. The
 * parser stays: the adapter is the last line of defence for tasks queued by other means.
 */
export const SketchOptionsSchema = Type.Object(
  {
    delay_ms: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 600_000, description: 'How long generating takes, spread over the steps.' }),
    ),
    fail: Type.Optional(
      Type.Union(
        FAIL_CLASSES.map((errorClass) => Type.Literal(errorClass)),
        { description: 'Fail in this class after the delay (for testing retries).' },
      ),
    ),
    fail_attempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        description: 'Fail only while the attempt is at most this; needs fail.',
      }),
    ),
    retry_after_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3_600_000,
        description: 'The Retry-After a rate_limited failure carries; needs fail: rate_limited.',
      }),
    ),
  },
  {
    additionalProperties: false,
    // An option that would silently do nothing is more likely a typo than a wish.
    dependentRequired: { fail_attempts: ['fail'] },
    dependentSchemas: {
      retry_after_ms: { type: 'object', required: ['fail'], properties: { fail: { const: 'rate_limited' } } },
    },
  },
);

const invalid = (message: string) => new PermanentError('INVALID_PROVIDER_OPTIONS', `sketch: ${message}`);

function integer(options: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${key} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

export function parseSketchOptions(options: Record<string, unknown>): SketchOptions {
  // The API already insists on an object, but the adapter is the last line of defence.
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw invalid('options must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw invalid(`unknown option ${key}; known: ${[...KNOWN].join(', ')}`);
  }
  const fail = options.fail;
  if (fail !== undefined && !FAIL_CLASSES.includes(fail as ProviderErrorClass)) {
    throw invalid(`fail must be one of ${FAIL_CLASSES.join(', ')}, not ${JSON.stringify(fail)}`);
  }
  const parsed: SketchOptions = {
    delayMs: integer(options, 'delay_ms', 0, 600_000) ?? 0,
    fail: fail as ProviderErrorClass | undefined,
    failAttempts: integer(options, 'fail_attempts', 1, 100),
    retryAfterMs: integer(options, 'retry_after_ms', 0, 3_600_000),
  };
  // An option that would silently do nothing is more likely a typo'd test than a wish.
  if (parsed.failAttempts !== undefined && parsed.fail === undefined) throw invalid('fail_attempts needs fail');
  if (parsed.retryAfterMs !== undefined && parsed.fail !== 'rate_limited') {
    throw invalid('retry_after_ms needs fail: rate_limited');
  }
  return parsed;
}
