import { RateLimitedError } from '../errors.js';
import type { Backend } from './backend.js';

/** The code of a task error and of a backend's last error when its server did not answer. */
export const BACKEND_UNAVAILABLE = 'BACKEND_UNAVAILABLE';

/** Network failures that mean "nobody answered": the server is off, asleep, rebooting or unknown. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The network code (fetch wraps it in `cause`) when `error` means the server could not be reached at all. */
export function unreachableCode(error: unknown): string | undefined {
  let cause: unknown = error;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return code;
    cause = cause.cause;
  }
  return undefined;
}

/**
 * A backend nobody answers at is not the task's fault: a rate limit on the backend's credential,
 * so the worker rests that backend for `cooldownMs` and the task goes back to the queue,
 * uncounted, for another backend (or this one once it answers again).
 */
export function backendUnavailable(
  what: string,
  backend: Backend,
  code: string,
  cooldownMs: number,
  cause: unknown,
): RateLimitedError {
  return new RateLimitedError(
    `${what}: the server at ${backend.baseUrl} does not answer (${code}); trying other servers`,
    cooldownMs,
    { cause, code: BACKEND_UNAVAILABLE },
  );
}
