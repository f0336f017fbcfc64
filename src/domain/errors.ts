/**
 * Every deliberate error Easel answers with: stable code → HTTP status and title.
 * Codes are part of the API: never rename or reuse one; `docs/errors.md` lists them all.
 */
export const ErrorCodes = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_JSON: { status: 400, title: 'The request body is not valid JSON' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request body must be application/json' },
  BODY_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNKNOWN_PROVIDER: { status: 400, title: 'No such provider' },
  UNKNOWN_MODEL: { status: 400, title: 'The provider has no such model' },
  UNSUPPORTED_SIZE: { status: 400, title: 'The model does not support this size' },
  UNSUPPORTED_STEPS: { status: 400, title: 'The model does not support this many steps' },
  INVALID_CURSOR: { status: 400, title: 'The pagination cursor is not valid' },
  INVALID_EVENT_ID: { status: 400, title: 'Last-Event-ID is not an id this server sent' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'This Idempotency-Key was used with a different request' },
  TASK_NOT_FOUND: { status: 404, title: 'No such task' },
  IMAGE_NOT_FOUND: { status: 404, title: 'No such image' },
  PREVIEW_NOT_FOUND: { status: 404, title: 'The task has no preview now' },
  IMAGE_EXPIRED: { status: 410, title: 'The image has expired and its bytes were deleted' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  TASK_NOT_CANCELABLE: { status: 409, title: 'The task has already finished' },
  TASK_NOT_RETRYABLE: { status: 409, title: 'Only failed or canceled tasks can be retried' },
  NOT_READY: { status: 503, title: 'The service is not ready' },
  QUEUE_FULL: { status: 503, title: 'The queue is full; try again later' },
  INTERNAL: { status: 500, title: 'Internal error' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'The database is not reachable right now; try again shortly' },
  TOO_MANY_STREAMS: { status: 429, title: 'Too many open event streams' },
  EVENT_ID_EXPIRED: { status: 410, title: 'Events after this Last-Event-ID are no longer kept' },
  HOST_NOT_ALLOWED: { status: 421, title: 'This server does not answer to that host name' },
  UNSUPPORTED_KIND: { status: 400, title: 'The model does not support this kind of task' },
  INPUT_IMAGE_INVALID: { status: 400, title: 'The input image is not a PNG, JPEG or WebP image' },
  INPUT_IMAGE_TOO_LARGE: { status: 400, title: 'The input image has more pixels than this server decodes' },
  INPUT_IMAGE_URL_REFUSED: { status: 400, title: 'The input image URL is refused' },
  INPUT_IMAGE_FETCH_FAILED: { status: 400, title: 'The input image URL could not be fetched' },
  UPLOAD_NOT_FOUND: { status: 400, title: 'No such upload' },
  CREDENTIAL_NOT_FOUND: { status: 404, title: 'No such credential' },
  CREDENTIAL_EXISTS: { status: 409, title: 'This secret is stored already for this provider' },
  SECRET_KEY_MISSING: { status: 503, title: 'EASEL_SECRET_KEY is not set, so secrets cannot be stored' },
  UNSUPPORTED_N: { status: 400, title: 'The model does not make this many images per task' },
  AUTH_REQUIRED: { status: 401, title: 'An API key is required: Authorization: Bearer <key>' },
  INVALID_API_KEY: { status: 401, title: 'The API key is not valid (unknown, revoked, or its user was deleted)' },
  ADMIN_REQUIRED: { status: 403, title: 'This route needs an admin API key' },
  AMBIGUOUS_MODEL: { status: 400, title: 'More than one provider serves this model; name the provider' },
  ADMIN_LOCAL_ONLY: { status: 403, title: 'Admin routes answer only requests from this machine (loopback)' },
  ADMIN_SECRET_INVALID: { status: 401, title: 'The secret is missing or wrong' },
  TOO_MANY_ACTIVE_TASKS: {
    status: 429,
    title: 'You have as many tasks queued and running as you may; try again later',
  },
  RATE_LIMITED: { status: 429, title: 'Too many requests with this API key; try again after the current minute' },
  PRIORITY_NOT_ALLOWED: { status: 400, title: 'The priority is above your maximum' },
  INSUFFICIENT_CREDITS: { status: 402, title: 'Not enough credits available for this task' },
  USER_NOT_FOUND: { status: 404, title: 'No such user' },
  USER_EXISTS: { status: 409, title: 'A user with this email exists already' },
  KEY_NOT_FOUND: { status: 404, title: 'No such API key' },
  LOCAL_USER_PROTECTED: { status: 409, title: 'The built-in local user cannot be deleted or demoted' },
  LAST_ADMIN: { status: 409, title: 'This is the last admin; make another admin first' },
  BILLING_UNAVAILABLE: { status: 503, title: 'The billing service is not reachable right now; try again shortly' },
  BILLING_NOT_CONFIGURED: { status: 409, title: 'No external billing service is configured (LICENSE_API_ENDPOINT)' },
  SIGNED_URL_EXPIRED: { status: 403, title: 'This signed image URL has expired; fetch the task again for a fresh one' },
  SIGNED_URL_INVALID: { status: 403, title: 'The signature of this image URL is not valid' },
  STORAGE_UNAVAILABLE: { status: 503, title: 'The image store is not reachable right now; try again shortly' },
  WORKER_TOKEN_REQUIRED: { status: 401, title: 'Worker routes need a worker token: Authorization: Bearer easel_wk_…' },
  INVALID_WORKER_TOKEN: { status: 401, title: 'The worker token is not valid (unknown or revoked)' },
  WORKER_TOKEN_NOT_ALLOWED: { status: 401, title: 'A worker token can call only the /v1/worker/ routes' },
  WORKER_TOKEN_NOT_FOUND: { status: 404, title: 'No such worker token' },
  LEASE_LOST: {
    status: 409,
    title: 'The lease is no longer held: the task was rescued, re-claimed, or has finished; nothing was changed',
  },
  WORKER_IMAGE_MISSING: { status: 400, title: 'An image named in the outcome was not uploaded under this lease' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** A deliberate API error; the problem+json handler renders it. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message ?? ErrorCodes[code].title);
  }
  get status(): number {
    return ErrorCodes[this.code].status;
  }
}

/** Task error codes stored on failed tasks (beyond those adapters raise). */
export const TaskErrorCodes = {
  WORKER_LOST: 'WORKER_LOST',
  ATTEMPT_TIMED_OUT: 'ATTEMPT_TIMED_OUT',
  INTERNAL: 'INTERNAL',
  CANCELED: 'CANCELED',
  STORAGE_UNAVAILABLE: 'STORAGE_UNAVAILABLE',
} as const;

/** Normalise any throwable into a non-empty message; keeps `cause` for logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name || 'unknown error';
  if (typeof error === 'string' && error) return error;
  return 'unknown error';
}
