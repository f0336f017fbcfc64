import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { OpenAPIV3_1 } from 'openapi-types';
import type { ErrorCode } from '../domain/errors.js';
import { isAdminRoute, isPublicRoute, isWorkerRoute } from './auth.js';
import { HOST_CHECK_EXEMPT_ROUTES } from './host-check.js';
import { ProblemSchema } from './schemas/task.js';

/**
 * The OpenAPI document is generated from the route schemas (one source for validation and
 * docs), then made exact here: what a route's own schema cannot say, because it happens around
 * the handler (Host check, body parsing, hijacked streams) or because it is about headers and
 * media types, is stated once per operation in OPERATIONS. `npm run lint:openapi` checks the
 * result with Redocly's recommended rules.
 *
 * Invariant: every documented operation has an entry; building the document throws otherwise,
 * so a new route cannot ship undocumented errors.
 */

type Document = OpenAPIV3_1.Document;
type Operation = OpenAPIV3_1.OperationObject;
type Response = OpenAPIV3_1.ResponseObject;
type Header = OpenAPIV3_1.HeaderObject;

const PROBLEM_MEDIA_TYPE = 'application/problem+json';
const PROBLEM_REF = '#/components/schemas/Problem';

const HEADERS = {
  Location: { description: 'The URL of the task.', schema: { type: 'string' } },
  'Preference-Applied': {
    description: 'Present when `Prefer: wait=N` was honoured: the wait applied, in seconds.',
    schema: { type: 'string', pattern: '^wait=[0-9]+$' },
  },
  'Idempotent-Replayed': {
    description: 'Present (`true`) when the answer is a replay for a repeated `Idempotency-Key`.',
    schema: { type: 'string', enum: ['true'] },
  },
  ETag: { description: "The image's sha256, quoted. The bytes behind a URL never change.", schema: { type: 'string' } },
  'Cache-Control': { description: 'Cacheable for a year, by this user only.', schema: { type: 'string' } },
  'WWW-Authenticate': {
    description: 'The scheme to authenticate with: `Bearer realm="easel"` (RFC 6750).',
    schema: { type: 'string' },
  },
  'Retry-After': {
    description: 'Seconds to wait before trying again.',
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
} satisfies Record<string, Header>;
type HeaderName = keyof typeof HEADERS;

interface RequestHeader {
  name: string;
  description: string;
}

/** An error status an operation can answer, with what it means there; the body is a Problem. */
type Problems = Partial<Record<number, string>>;

interface OperationFacts {
  operationId: string;
  /**
   * Unless false, the operation reads the database, so it may answer 503 DATABASE_UNAVAILABLE
   * with Retry-After: added to every such operation here, not written out in each entry. False
   * for those that need no database, or report its outage their own way (/readyz).
   */
  databaseDown?: false;
  /** Every error status the operation can answer besides 421 (added to all but the probes). */
  problems: Problems;
  /** Success responses to state in full, where the route schema cannot (streams, bytes, probes). */
  responses?: Record<string, Response>;
  /** Response headers by status. */
  headers?: Record<string, HeaderName[]>;
  /** Request headers the handler reads without validating them. */
  requestHeaders?: RequestHeader[];
  /** A request body the handler parses itself (multipart), which the route schema cannot declare. */
  requestBody?: OpenAPIV3_1.RequestBodyObject;
  /** Also takes the JSON body's fields as `multipart/form-data`, with this file field. */
  formFile?: { field: string; description: string };
}

const codes = (...list: ErrorCode[]) => list.map((code) => `\`${code}\``).join(', ');
const BAD_REQUEST = `The request breaks a rule (${codes('VALIDATION_FAILED')}); \`errors[]\` says which.`;
const BAD_BODY = `The request is not valid (${codes('VALIDATION_FAILED', 'MALFORMED_JSON', 'UNKNOWN_PROVIDER', 'UNKNOWN_MODEL', 'UNSUPPORTED_SIZE', 'UNSUPPORTED_STEPS', 'UNSUPPORTED_KIND')}), or its img2img \`image\` is refused (${codes('INPUT_IMAGE_INVALID', 'INPUT_IMAGE_TOO_LARGE', 'INPUT_IMAGE_URL_REFUSED', 'INPUT_IMAGE_FETCH_FAILED', 'UPLOAD_NOT_FOUND')}); nothing was written.`;
const BAD_ID = `The id is not a UUID (${codes('VALIDATION_FAILED')}), or a body sent along is not JSON (${codes('MALFORMED_JSON')}).`;
const TOO_LARGE = `The body exceeds \`EASEL_BODY_LIMIT_BYTES\` (${codes('BODY_TOO_LARGE')}).`;
const WRONG_MEDIA_TYPE = `A body that is not \`application/json\` (${codes('UNSUPPORTED_MEDIA_TYPE')}).`;
const WRONG_SUBMIT_MEDIA_TYPE = `A body that is neither \`application/json\` nor \`multipart/form-data\` (${codes('UNSUPPORTED_MEDIA_TYPE')}).`;
const NO_TASK = `No task with that id is yours (${codes('TASK_NOT_FOUND')}).`;
const DATABASE_DOWN = `The database is restarting or out of reach (${codes('DATABASE_UNAVAILABLE')}); try again after \`Retry-After\` seconds.`;
const RATE_LIMITED = `This API key made more than \`EASEL_KEY_RATE_PER_MINUTE\` requests this clock minute (${codes('RATE_LIMITED')}); try again after \`Retry-After\` seconds.`;
const TOO_MANY_ACTIVE = `You have \`EASEL_USER_MAX_ACTIVE_TASKS\` tasks queued or running already (${codes('TOO_MANY_ACTIVE_TASKS')}); nothing was written; try again after \`Retry-After\` seconds.`;
const BILLING_DOWN = `The billing service (\`LICENSE_API_ENDPOINT\`) did not answer and \`LICENSE_API_FAIL_OPEN\` is false (${codes('BILLING_UNAVAILABLE')}); nothing was written; try again after \`Retry-After\` seconds.`;
const WRONG_HOST = `The \`Host\` header names no host this server answers to (${codes('HOST_NOT_ALLOWED')}); see EASEL_ALLOWED_HOSTS.`;

const json = (schema: OpenAPIV3_1.SchemaObject) => ({ 'application/json': { schema } });
const image = { type: 'string', format: 'binary' } as const;

const NOT_ADMIN = `The API key is not an admin's (${codes('ADMIN_REQUIRED')}).`;
const NO_CREDENTIAL = `No credential with that id (${codes('CREDENTIAL_NOT_FOUND')}).`;
const NO_USER = `No user with that id, or not one you may see (${codes('USER_NOT_FOUND')}).`;
const NO_KEY_GIVEN = `No valid API key: none was sent where one is required (${codes('AUTH_REQUIRED')}), or the one sent is unknown, revoked or its user deleted (${codes('INVALID_API_KEY')}), or it is a worker token, which serves the worker routes only (${codes('WORKER_TOKEN_NOT_ALLOWED')}).`;
const NO_WORKER_TOKEN = `No valid worker token: none was sent, or an API key was (${codes('WORKER_TOKEN_REQUIRED')}), or the token is unknown or revoked (${codes('INVALID_WORKER_TOKEN')}): a remote worker stops on this answer.`;
const LEASE_LOST = `The lease is gone: the task was rescued, re-claimed, canceled or finished (${codes('LEASE_LOST')}); nothing was changed. Stop the attempt and touch nothing upstream.`;
const WORKER_BODY = `The request is not valid (${codes('VALIDATION_FAILED', 'MALFORMED_JSON')}); \`errors[]\` names the field; nothing was written.`;
const ADMIN_BODY = `The request is not valid (${codes('VALIDATION_FAILED', 'MALFORMED_JSON')}); \`errors[]\` names the field; nothing was written.`;

/** Worker tokens (admin) and the remote workers' own routes (worker token only). */
function workerOperations(): Record<string, OperationFacts> {
  const jsonBody = { 400: WORKER_BODY, 413: TOO_LARGE, 415: WRONG_MEDIA_TYPE };
  const fenced = { ...jsonBody, 409: LEASE_LOST };
  return {
    'POST /v1/admin/worker-tokens': {
      operationId: 'createWorkerToken',
      problems: { 400: ADMIN_BODY, 403: NOT_ADMIN, 413: TOO_LARGE, 415: WRONG_MEDIA_TYPE },
    },
    'GET /v1/admin/worker-tokens': { operationId: 'listWorkerTokens', problems: { 403: NOT_ADMIN } },
    'DELETE /v1/admin/worker-tokens/{id}': {
      operationId: 'revokeWorkerToken',
      problems: {
        400: BAD_ID,
        403: NOT_ADMIN,
        404: `No worker token with that id (${codes('WORKER_TOKEN_NOT_FOUND')}).`,
        413: TOO_LARGE,
        415: WRONG_MEDIA_TYPE,
      },
    },
    'POST /v1/worker/register': {
      operationId: 'registerWorker',
      problems: { ...jsonBody, 400: `${WORKER_BODY} Or \`worker_id\` is another token's.` },
    },
    'POST /v1/worker/heartbeat': {
      operationId: 'workerHeartbeat',
      problems: { ...jsonBody, 400: `${WORKER_BODY} Or \`worker_id\` is another token's.` },
    },
    'POST /v1/worker/claim': {
      operationId: 'claimTasks',
      problems: { ...jsonBody, 400: `${WORKER_BODY} Or \`worker_id\` is not registered, or is another token's.` },
    },
    'POST /v1/worker/tasks/{id}/progress': { operationId: 'reportWorkerProgress', problems: fenced },
    'POST /v1/worker/tasks/{id}/provider-ref': { operationId: 'saveWorkerProviderRef', problems: fenced },
    'PUT /v1/worker/tasks/{id}/images/{index}': {
      operationId: 'uploadWorkerImage',
      problems: {
        400: `A parameter breaks a rule (${codes('VALIDATION_FAILED')}).`,
        409: LEASE_LOST,
        413: `The image exceeds 64 MiB (${codes('BODY_TOO_LARGE')}).`,
        415: `The body is not \`image/png\`, \`image/jpeg\` or \`image/webp\` (${codes('UNSUPPORTED_MEDIA_TYPE')}).`,
      },
      requestBody: {
        required: true,
        content: { 'image/png': { schema: image }, 'image/jpeg': { schema: image }, 'image/webp': { schema: image } },
      },
    },
    'POST /v1/worker/tasks/{id}/succeed': {
      operationId: 'succeedWorkerAttempt',
      problems: {
        ...fenced,
        400: `${WORKER_BODY} Or an image was not uploaded under this lease, or is not readable (${codes('WORKER_IMAGE_MISSING')}).`,
      },
    },
    'POST /v1/worker/tasks/{id}/fail': { operationId: 'failWorkerAttempt', problems: fenced },
  };
}

/** The admin views over every user's tasks, the dead letters, the queue and users (admins only). */
function adminViewOperations(): Record<string, OperationFacts> {
  const noKey = `A key is needed and none was sent (${codes('AUTH_REQUIRED')}), or the key is not valid (${codes('INVALID_API_KEY')}).`;
  const badQuery = `A filter or page parameter is not valid (${codes('VALIDATION_FAILED', 'INVALID_CURSOR')}); \`errors[]\` names it.`;
  const badBody = (extra: string) =>
    `The body is not valid (${codes('VALIDATION_FAILED', 'MALFORMED_JSON')})${extra}; \`errors[]\` names the field; nothing was changed.`;
  const read = (operationId: string): OperationFacts => ({
    operationId,
    problems: { 400: badQuery, 401: noKey, 403: NOT_ADMIN },
  });
  const write = (operationId: string, bad: string): OperationFacts => ({
    operationId,
    problems: { 400: bad, 401: noKey, 403: NOT_ADMIN, 413: TOO_LARGE, 415: WRONG_MEDIA_TYPE },
  });
  return {
    'GET /v1/admin/tasks': read('listAllTasks'),
    'GET /v1/admin/dead-letters': read('listDeadLetters'),
    'POST /v1/admin/dead-letters/retry': write(
      'retryDeadLetters',
      badBody(', or it names neither `ids` nor a filter, or both'),
    ),
    'POST /v1/admin/dead-letters/purge': write(
      'purgeDeadLetters',
      badBody(', or `confirm` is not `purge`, or it names both `ids` and filters'),
    ),
    'GET /v1/admin/stats': read('getQueueStats'),
    'POST /v1/admin/queue/clear': write('clearQueue', badBody(', or `confirm` is not `clear`')),
    'GET /v1/admin/users': read('listUsersWithTaskCounts'),
  };
}

/** The licence API's charges (docs/billing.md, "External billing"): admins only. */
function adminBillingOperations(): Record<string, OperationFacts> {
  const noKey = `A key is needed and none was sent (${codes('AUTH_REQUIRED')}), or the key is not valid (${codes('INVALID_API_KEY')}).`;
  return {
    'GET /v1/admin/billing/unreconciled': {
      operationId: 'listUnreconciledCharges',
      problems: {
        400: `A page parameter is not valid (${codes('VALIDATION_FAILED', 'INVALID_CURSOR')}); \`errors[]\` names it.`,
        401: noKey,
        403: NOT_ADMIN,
      },
    },
    'POST /v1/admin/billing/reconcile': {
      operationId: 'reconcileCharges',
      problems: {
        400: `\`retry_failed\` is neither \`true\` nor \`false\` (${codes('VALIDATION_FAILED')}), or a body sent along is not JSON (${codes('MALFORMED_JSON')}).`,
        401: noKey,
        403: NOT_ADMIN,
        409: `\`LICENSE_API_ENDPOINT\` is not set (${codes('BILLING_NOT_CONFIGURED')}); nothing was sent.`,
        413: TOO_LARGE,
        415: WRONG_MEDIA_TYPE,
      },
    },
  };
}

const NO_CREDITS = `The task is priced and your available credits (balance − held) cannot cover its hold or are under \`EASEL_MIN_BALANCE\` (${codes('INSUFFICIENT_CREDITS')}); \`balance\`, \`held\`, \`available\`, \`needed\` and \`min_balance\` say by how much; nothing was written. With \`LICENSE_API_ENDPOINT\` set, the same when the billing service's balance falls short (\`source: "license_api"\`).`;

const OPERATIONS: Record<string, OperationFacts> = {
  'POST /v1/admin/credentials': {
    operationId: 'addCredential',
    problems: {
      400: ADMIN_BODY,
      403: NOT_ADMIN,
      409: `This secret is stored already for this provider (${codes('CREDENTIAL_EXISTS')}); \`existing_id\` names it.`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
      503: `No key to encrypt secrets: an external \`DATABASE_URL\` without \`EASEL_SECRET_KEY\` (${codes('SECRET_KEY_MISSING')}). Or: ${DATABASE_DOWN}`,
    },
  },
  'GET /v1/admin/credentials': {
    operationId: 'listCredentials',
    problems: { 400: BAD_REQUEST, 403: NOT_ADMIN },
  },
  'GET /v1/admin/credentials/{id}': {
    operationId: 'getCredential',
    problems: { 400: BAD_REQUEST, 403: NOT_ADMIN, 404: NO_CREDENTIAL },
  },
  'PATCH /v1/admin/credentials/{id}': {
    operationId: 'updateCredential',
    problems: {
      400: ADMIN_BODY,
      403: NOT_ADMIN,
      404: NO_CREDENTIAL,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'POST /v1/admin/credentials/{id}/disable': {
    operationId: 'disableCredential',
    problems: {
      400: ADMIN_BODY,
      403: NOT_ADMIN,
      404: NO_CREDENTIAL,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'POST /v1/admin/credentials/{id}/enable': {
    operationId: 'enableCredential',
    problems: {
      400: BAD_ID,
      403: NOT_ADMIN,
      404: NO_CREDENTIAL,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'DELETE /v1/admin/credentials/{id}': {
    operationId: 'deleteCredential',
    problems: {
      400: BAD_ID,
      403: NOT_ADMIN,
      404: NO_CREDENTIAL,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'POST /v1/tasks': {
    operationId: 'createTask',
    formFile: {
      field: 'image',
      description:
        'img2img: the input image file (PNG, JPEG or WebP, at most `EASEL_UPLOAD_MAX_BYTES`, larger is 413). As a text field instead, the same data URL, URL or `upload:<id>` as in JSON.',
    },
    problems: {
      400: `${BAD_BODY} Or \`priority\` is above your maximum (${codes('PRIORITY_NOT_ALLOWED')}); \`max_priority\` says what it is.`,
      402: NO_CREDITS,
      409: `The \`Idempotency-Key\` was used with a different request (${codes('IDEMPOTENCY_KEY_REUSED')}).`,
      429: TOO_MANY_ACTIVE,
      413: `${TOO_LARGE} Or, in a form, the \`image\` file exceeds \`EASEL_UPLOAD_MAX_BYTES\`.`,
      415: WRONG_SUBMIT_MEDIA_TYPE,
      503: `About \`EASEL_MAX_QUEUED_TASKS\` tasks are queued already and nothing was written (${codes('QUEUE_FULL')}). Or: ${DATABASE_DOWN} Or: ${BILLING_DOWN}`,
    },
    headers: {
      200: ['Location', 'Preference-Applied', 'Idempotent-Replayed'],
      202: ['Location', 'Preference-Applied', 'Idempotent-Replayed'],
      429: ['Retry-After'],
    },
  },
  'GET /v1/tasks': {
    operationId: 'listTasks',
    problems: {
      400: `${BAD_REQUEST} Or \`cursor\` is not one this API gave (${codes('INVALID_CURSOR')}).`,
    },
  },
  'GET /v1/tasks/{id}': {
    operationId: 'getTask',
    problems: { 400: BAD_REQUEST, 404: NO_TASK },
  },
  'POST /v1/tasks/{id}/cancel': {
    operationId: 'cancelTask',
    problems: {
      400: BAD_ID,
      404: NO_TASK,
      409: `The task already finished (${codes('TASK_NOT_CANCELABLE')}).`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'POST /v1/tasks/{id}/retry': {
    operationId: 'retryTask',
    problems: {
      400: `${BAD_ID} Or the task's priority is above your maximum (${codes('PRIORITY_NOT_ALLOWED')}).`,
      402: NO_CREDITS,
      404: NO_TASK,
      409: `Only failed or canceled tasks can be retried (${codes('TASK_NOT_RETRYABLE')}).`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
      429: TOO_MANY_ACTIVE,
      503: `${DATABASE_DOWN} Or: ${BILLING_DOWN}`,
    },
    headers: { 429: ['Retry-After'] },
  },
  'GET /v1/tasks/{id}/images/{index}': {
    operationId: 'getTaskImage',
    problems: {
      400: BAD_REQUEST,
      404: `The task has no image at that index (${codes('IMAGE_NOT_FOUND')}).`,
      410: `The image passed its retention and its bytes were deleted; the task still lists it with \`expired_at\` (${codes('IMAGE_EXPIRED')}).`,
    },
    responses: {
      200: {
        description: 'The image bytes.',
        content: { 'image/png': { schema: image }, 'image/jpeg': { schema: image }, 'image/webp': { schema: image } },
      },
      304: { description: '`If-None-Match` names the current ETag: the copy you have is the image.' },
    },
    headers: { 200: ['ETag', 'Cache-Control'], 304: ['ETag', 'Cache-Control'] },
    requestHeaders: [{ name: 'If-None-Match', description: 'An ETag from an earlier answer; a match answers 304.' }],
  },
  'GET /v1/tasks/{id}/images/{index}/thumbnail': {
    operationId: 'getTaskImageThumbnail',
    problems: {
      400: BAD_REQUEST,
      404: `The task has no image at that index, or the image was stored before thumbnails existed (${codes('IMAGE_NOT_FOUND')}).`,
    },
    responses: {
      200: {
        description: 'The thumbnail: WebP, at most 256 px on its longest side.',
        content: { 'image/webp': { schema: image } },
      },
      304: { description: '`If-None-Match` names the current ETag: the copy you have is the thumbnail.' },
    },
    headers: { 200: ['ETag', 'Cache-Control'], 304: ['ETag', 'Cache-Control'] },
    requestHeaders: [{ name: 'If-None-Match', description: 'An ETag from an earlier answer; a match answers 304.' }],
  },
  'GET /v1/tasks/{id}/input-image': {
    operationId: 'getTaskInputImage',
    problems: {
      400: BAD_REQUEST,
      404: `${NO_TASK} Or the task has no input image: it is not img2img (${codes('IMAGE_NOT_FOUND')}).`,
    },
    responses: {
      200: { description: 'The checked input image (PNG).', content: { 'image/png': { schema: image } } },
      304: { description: '`If-None-Match` names the current ETag: the copy you have is the image.' },
    },
    headers: { 200: ['ETag', 'Cache-Control'], 304: ['ETag', 'Cache-Control'] },
    requestHeaders: [{ name: 'If-None-Match', description: 'An ETag from an earlier answer; a match answers 304.' }],
  },
  'GET /v1/tasks/{id}/preview': {
    operationId: 'getTaskPreview',
    problems: {
      400: BAD_REQUEST,
      404: `${NO_TASK} Or the task is not running or has no preview yet (${codes('PREVIEW_NOT_FOUND')}).`,
    },
    responses: {
      200: {
        description: 'The latest intermediate image; never cached.',
        content: { 'image/png': { schema: image }, 'image/jpeg': { schema: image }, 'image/webp': { schema: image } },
      },
    },
    headers: { 200: ['Cache-Control'] },
  },
  'POST /v1/uploads': {
    operationId: 'createUpload',
    problems: {
      400: `No file in the field \`image\`, or more than one part (${codes('VALIDATION_FAILED')}); or the file is not a PNG, JPEG or WebP image (${codes('INPUT_IMAGE_INVALID')}) or has more than \`EASEL_INPUT_MAX_PIXELS\` pixels (${codes('INPUT_IMAGE_TOO_LARGE')}). Nothing was stored.`,
      413: `The file exceeds \`EASEL_UPLOAD_MAX_BYTES\` (${codes('BODY_TOO_LARGE')}).`,
      415: `The body is not \`multipart/form-data\` (${codes('UNSUPPORTED_MEDIA_TYPE')}).`,
    },
    requestBody: {
      required: true,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            required: ['image'],
            properties: { image: { ...image, description: 'The image file: PNG, JPEG or WebP.' } },
          },
          encoding: { image: { contentType: 'image/png, image/jpeg, image/webp' } },
        },
      },
    },
  },
  'GET /v1/events': {
    operationId: 'streamEvents',
    problems: {
      400: `A query parameter breaks a rule (${codes('VALIDATION_FAILED')}), or the event id is not one this API sent (${codes('INVALID_EVENT_ID')}).`,
      404: NO_TASK,
      410: `The events after \`Last-Event-ID\` are past retention (${codes('EVENT_ID_EXPIRED')}): re-read the task and reconnect without it.`,
      429: `Too many open event streams for you or on this API process (${codes('TOO_MANY_STREAMS')}).`,
    },
    headers: { 429: ['Retry-After'] },
    responses: {
      200: {
        description:
          'A stream of server-sent events: `connected`, then `task_update` (JSON data, with an `id`) and `heartbeat`; with `task_id`, a final `done` after the task finished, then the stream ends.',
        content: { 'text/event-stream': { schema: { type: 'string' } } },
      },
    },
    requestHeaders: [
      {
        name: 'Last-Event-ID',
        description: 'Resume after this event: the stream sends exactly the updates that followed it.',
      },
    ],
  },
  'GET /healthz': {
    operationId: 'getHealth',
    databaseDown: false,
    problems: {},
    responses: {
      200: {
        description: 'The process is up.',
        content: json({ type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }),
      },
    },
  },
  'GET /readyz': {
    operationId: 'getReadiness',
    databaseDown: false,
    problems: {
      503: `The database is not reachable, migrations are pending or storage is not writable (${codes('NOT_READY')}).`,
    },
    responses: {
      200: {
        description: 'Ready to serve.',
        content: json({ type: 'object', required: ['status'], properties: { status: { const: 'ready' } } }),
      },
    },
  },
  'GET /v1/providers': {
    operationId: 'listProviders',
    problems: {},
  },
  'GET /api/token-status': {
    operationId: 'getTokenStatus',
    problems: {
      400: BAD_REQUEST,
      401: `The query parameter \`secret\` is missing or is not \`ADMIN_SECRET\` (${codes('ADMIN_SECRET_INVALID')}).`,
    },
  },
  'GET /v1/routes': { operationId: 'listRoutes', databaseDown: false, problems: {} },
  'GET /v1/queue': { operationId: 'getQueue', problems: {} },
  ...adminViewOperations(),
  ...adminBillingOperations(),
  ...workerOperations(),
  'GET /v1/me/balance': {
    operationId: 'getMyBalance',
    problems: {},
  },
  'GET /v1/me/ledger': {
    operationId: 'listMyLedger',
    problems: {
      400: `A query parameter breaks a rule (${codes('VALIDATION_FAILED')}), or the cursor is not one this API gave (${codes('INVALID_CURSOR')}).`,
    },
  },
  'POST /v1/users/{id}/credits': {
    operationId: 'addUserCredits',
    problems: {
      400: ADMIN_BODY,
      403: NOT_ADMIN,
      404: `No live user with that id (${codes('USER_NOT_FOUND')}).`,
      409: `The \`Idempotency-Key\` was used with a different request for this user (${codes('IDEMPOTENCY_KEY_REUSED')}); \`entry_id\` names the first entry.`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
    headers: { 201: ['Idempotent-Replayed'] },
  },
  'POST /v1/users': {
    operationId: 'createUser',
    problems: {
      400: ADMIN_BODY,
      409: `A live user has this email already (${codes('USER_EXISTS')}); \`existing_id\` names them.`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'GET /v1/users': {
    operationId: 'listUsers',
    problems: {
      400: `${BAD_REQUEST} Or \`cursor\` is not one this API gave (${codes('INVALID_CURSOR')}).`,
    },
  },
  'GET /v1/users/{id}': {
    operationId: 'getUser',
    problems: { 400: BAD_REQUEST, 404: NO_USER },
  },
  'PATCH /v1/users/{id}': {
    operationId: 'updateUser',
    problems: {
      400: ADMIN_BODY,
      404: NO_USER,
      409: `Another live user has this email (${codes('USER_EXISTS')}), or the change would demote the built-in local user (${codes('LOCAL_USER_PROTECTED')}) or the last admin (${codes('LAST_ADMIN')}).`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'DELETE /v1/users/{id}': {
    operationId: 'deleteUser',
    problems: {
      400: BAD_ID,
      404: NO_USER,
      409: `The built-in local user (${codes('LOCAL_USER_PROTECTED')}) and the last admin (${codes('LAST_ADMIN')}) cannot be deleted.`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
  'GET /v1/me': { operationId: 'getMe', problems: {} },
  'POST /v1/users/{id}/keys': {
    operationId: 'createApiKey',
    problems: { 400: ADMIN_BODY, 404: NO_USER, 413: TOO_LARGE, 415: WRONG_MEDIA_TYPE },
  },
  'GET /v1/users/{id}/keys': {
    operationId: 'listApiKeys',
    problems: { 400: BAD_REQUEST, 404: NO_USER },
  },
  'DELETE /v1/keys/{id}': {
    operationId: 'revokeApiKey',
    problems: {
      400: BAD_ID,
      404: `No API key with that id is yours (${codes('KEY_NOT_FOUND')}).`,
      413: TOO_LARGE,
      415: WRONG_MEDIA_TYPE,
    },
  },
};

function problemResponse(description: string): Response {
  return { description, content: { [PROBLEM_MEDIA_TYPE]: { schema: { $ref: PROBLEM_REF } } } };
}

/** `/v1/tasks/{id}` (OpenAPI) → `/v1/tasks/:id` (Fastify), to ask whether the host check applies. */
const fastifyPath = (path: string) => path.replace(/\{([^}]+)\}/g, ':$1');

/** Who may call a route, from the same rules the auth hook applies (src/api/auth.ts). */
interface Access {
  public: boolean;
  admin: boolean;
  /** A worker route: a worker token, never an API key (and no per-key rate limit). */
  worker: boolean;
}
/** The name of the bearer scheme in `components.securitySchemes`. */
const BEARER = 'apiKey';
/** The remote workers' bearer scheme. */
const WORKER_BEARER = 'workerToken';

/**
 * Security from the route's nature, never by hand: public routes `security: []`; every other
 * route needs a key, so it can answer 401 (with WWW-Authenticate), and an admin-only one 403.
 */
function applyAccess(key: string, operation: Operation, problems: Problems, access: Access | undefined): void {
  if (!access) throw new Error(`${key}: no route seen for it, so its access rules are unknown`);
  if (access.worker) {
    operation.security = [{ [WORKER_BEARER]: [] }];
    problems[401] = NO_WORKER_TOKEN;
    return;
  }
  operation.security = access.public ? [] : [{ [BEARER]: [] }];
  if (access.public) return;
  problems[401] = NO_KEY_GIVEN;
  if (access.admin) problems[403] = NOT_ADMIN;
}

function applyFacts(path: string, method: string, operation: Operation, access: Map<string, Access>): void {
  const key = `${method.toUpperCase()} ${path}`;
  const facts = OPERATIONS[key];
  if (!facts) throw new Error(`src/api/openapi.ts has no OPERATIONS entry for ${key}: add one`);
  operation.operationId = facts.operationId;
  const responses: Record<string, Response> = {};
  // The route schema's success responses stay (they serialise the answer); its error responses
  // give way to the exact list, since the errors of body parsing and the Host check are not its own.
  for (const [status, response] of Object.entries(operation.responses ?? {})) {
    if (Number(status) < 400) responses[status] = response as Response;
  }
  Object.assign(responses, facts.responses);
  const problems: Problems = { ...facts.problems };
  const headers: Record<string, HeaderName[]> = { ...facts.headers };
  if (facts.databaseDown !== false) {
    problems[503] ??= DATABASE_DOWN;
    headers[503] ??= ['Retry-After'];
  }
  if (!HOST_CHECK_EXEMPT_ROUTES.has(fastifyPath(path))) problems[421] = WRONG_HOST;
  // Every request with an API key counts against its per-minute budget (src/api/rate-limit.ts).
  // Worker tokens are not API keys: the per-key budget does not apply to them.
  const rateLimited = !isPublicRoute(fastifyPath(path)) && !isWorkerRoute(fastifyPath(path));
  if (rateLimited) problems[429] = problems[429] ? `${problems[429]} Or: ${RATE_LIMITED}` : RATE_LIMITED;
  applyAccess(key, operation, problems, access.get(`${method.toUpperCase()} ${fastifyPath(path)}`));
  for (const [status, description] of Object.entries(problems)) responses[status] = problemResponse(description!);
  if (operation.security?.length) headers[401] = [...(headers[401] ?? []), 'WWW-Authenticate'];
  for (const [status, names] of Object.entries(headers)) {
    const response = responses[status];
    if (!response) throw new Error(`${key}: headers given for status ${status}, which it never answers`);
    response.headers = Object.fromEntries(names.map((name) => [name, HEADERS[name]]));
  }
  if (rateLimited) responses[429]!.headers ??= { 'Retry-After': HEADERS['Retry-After'] };
  operation.responses = responses;
  if (facts.requestBody) operation.requestBody = facts.requestBody;
  if (facts.formFile) addFormBody(operation, facts.formFile);
  const declared = new Set(
    (operation.parameters ?? []).map((parameter) => ('name' in parameter ? parameter.name : '')),
  );
  const undeclared = (facts.requestHeaders ?? []).filter(({ name }) => !declared.has(name));
  if (undeclared.length > 0) {
    operation.parameters = [
      ...(operation.parameters ?? []),
      ...undeclared.map(({ name, description }): OpenAPIV3_1.ParameterObject => ({
        in: 'header',
        name,
        description,
        required: false,
        schema: { type: 'string' } as const,
      })),
    ];
  }
}

/**
 * The JSON body's fields as a form: the same schema (numbers are sent as their text), with the
 * file field binary and `provider_options` as JSON text.
 */
function addFormBody(operation: Operation, file: NonNullable<OperationFacts['formFile']>): void {
  const body = operation.requestBody as OpenAPIV3_1.RequestBodyObject | undefined;
  const json = body?.content['application/json']?.schema as OpenAPIV3_1.SchemaObject | undefined;
  if (!body || !json?.properties) throw new Error(`${operation.operationId}: formFile needs a JSON body schema`);
  const form: OpenAPIV3_1.SchemaObject = {
    ...json,
    properties: { ...json.properties, [file.field]: { ...image, description: file.description } },
  };
  body.content['multipart/form-data'] = {
    schema: form,
    encoding: {
      [file.field]: { contentType: 'image/png, image/jpeg, image/webp' },
      provider_options: { contentType: 'application/json' },
    },
  };
}

/** A JSON Schema copy of the Problem body without TypeBox's symbols or its `$id`. */
function problemComponent(): OpenAPIV3_1.SchemaObject {
  const { $id: _id, ...schema } = JSON.parse(JSON.stringify(ProblemSchema)) as Record<string, unknown>;
  return schema as OpenAPIV3_1.SchemaObject;
}

function makeExact(document: Document, access: Map<string, Access>): Document {
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const operation = item?.[method];
      if (operation) applyFacts(path, method, operation, access);
    }
  }
  document.components = {
    ...document.components,
    schemas: { ...document.components?.schemas, Problem: problemComponent() },
  };
  return document;
}

export const API_TITLE = 'Easel API';
export const API_DESCRIPTION =
  'One queued HTTP API for image generation across providers, with live progress. Errors are `application/problem+json` with a stable `code` (see docs/errors.md in the repository).';

/** Options for @fastify/swagger. `publicUrl` (EASEL_PUBLIC_URL) becomes the server URL when set. */
export function openApiOptions(publicUrl: string | undefined): FastifyDynamicSwaggerOptions {
  const access = new Map<string, Access>();
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: API_TITLE,
        version: '1',
        description: API_DESCRIPTION,
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // Relative: the server that serves this document.
      servers: [{ url: publicUrl ?? '/' }],
      // Every operation states its own security; this is the default for any that would not.
      security: [{ [BEARER]: [] }],
      components: {
        securitySchemes: {
          [BEARER]: {
            type: 'http',
            scheme: 'bearer',
            description:
              '`Authorization: Bearer easel_sk_…`, a key from `POST /v1/users/{id}/keys` or `EASEL_ADMIN_KEY`. With `EASEL_AUTH=local` (the default on a loopback address) a request without a key acts as the built-in local admin.',
          },
          [WORKER_BEARER]: {
            type: 'http',
            scheme: 'bearer',
            description:
              '`Authorization: Bearer easel_wk_…`, a worker token from `POST /v1/admin/worker-tokens`, for the `/v1/worker/` routes only (see docs/providers/remote-workers.md).',
          },
        },
      },
      tags: [
        { name: 'tasks', description: 'Submit, follow, cancel and retry generation tasks' },
        { name: 'events', description: 'Server-sent events' },
        { name: 'queue', description: 'Queue overview' },
        { name: 'providers', description: 'What can generate images here' },
        { name: 'system', description: 'Health and readiness' },
        { name: 'credits', description: 'Balances, the ledger, top-ups and adjustments' },
        {
          name: 'admin',
          description: 'Admin only: provider credentials, all tasks, dead letters, queue statistics and control',
        },
        { name: 'users', description: 'Users, API keys, and who a request acts as' },
        {
          name: 'workers',
          description: 'Remote workers (worker token only): claim, heartbeat, report, upload, finish',
        },
      ],
    },
    // Each route's access, from its options (config.admin) as the auth hook reads them.
    transform: ({ schema, url, route }) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        access.set(`${method.toUpperCase()} ${url}`, {
          public: isPublicRoute(url),
          admin: isAdminRoute(url, route.config as { admin?: boolean } | undefined),
          worker: isWorkerRoute(url),
        });
      }
      return { schema, url };
    },
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) throw new Error('Easel documents OpenAPI 3 only');
      return makeExact(documentObject.openapiObject as Document, access);
    },
  };
}
