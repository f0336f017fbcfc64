import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, ErrorCodes, type ErrorCode } from '../domain/errors.js';
import { isDatabaseUnavailable } from '../db/pool.js';
import { StorageUnavailableError } from '../storage/storage.js';
import { describeSchemaErrors, type IssueLocation, type SchemaError } from '../domain/validation.js';
import { PATTERN_RULES } from './schemas/task.js';

/** Fastify's own error codes that are the client's fault, mapped onto ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_JSON',
  // @fastify/multipart (POST /v1/uploads): a file over EASEL_UPLOAD_MAX_BYTES, or more parts than one.
  FST_REQ_FILE_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_FILES_LIMIT: 'VALIDATION_FAILED',
  FST_PARTS_LIMIT: 'VALIDATION_FAILED',
  FST_FIELDS_LIMIT: 'VALIDATION_FAILED',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  // A form field sent as application/json that is not JSON; a field named like a prototype key.
  FST_INVALID_JSON_FIELD_ERROR: 'MALFORMED_JSON',
  FST_PROTO_VIOLATION: 'VALIDATION_FAILED',
};

/** Fastify's validation contexts, named as the `in` of an issue. */
const LOCATIONS: Record<string, IssueLocation> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

export function sendProblem(
  reply: FastifyReply,
  code: ErrorCode,
  detail?: string,
  extra: Record<string, unknown> = {},
) {
  const { status, title } = ErrorCodes[code];
  return reply
    .code(status)
    .type('application/problem+json')
    .send({
      ...extra,
      type: `https://easel.dev/problems/${code.toLowerCase()}`,
      title,
      status,
      code,
      detail: detail ?? title,
    });
}

/** What a client is told to wait when the database is out of reach: about one pool reconnect. */
const DATABASE_RETRY_AFTER_SECONDS = 5;

export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError & { validationContext?: string }, request, reply) => {
    if (error instanceof ApiError) {
      // A refusal that ends with "come back later" says when, in the header too.
      const retryAfter = error.extra.retry_after_seconds;
      if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
      // RFC 6750: a 401 for a missing or bad bearer token says which scheme to use.
      if (error.code === 'AUTH_REQUIRED' || error.code === 'INVALID_API_KEY') {
        reply.header(
          'www-authenticate',
          `Bearer realm="easel"${error.code === 'INVALID_API_KEY' ? ', error="invalid_token"' : ''}`,
        );
      }
      return sendProblem(reply, error.code, error.message, error.extra);
    }
    if (error.validation) {
      const where = LOCATIONS[error.validationContext ?? 'body'] ?? 'body';
      const errors = describeSchemaErrors(error.validation as SchemaError[], { in: where, patterns: PATTERN_RULES });
      return sendProblem(reply, 'VALIDATION_FAILED', errors.map((issue) => issue.message).join('; '), { errors });
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) return sendProblem(reply, mapped, error.message);
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return sendProblem(reply, 'VALIDATION_FAILED', error.message);
    }
    if (isDatabaseUnavailable(error)) {
      // Not a bug: the database is restarting or out of reach. Clients may retry; the pools reconnect.
      request.log.warn({ err: error }, 'request failed: database unavailable');
      reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      return sendProblem(reply, 'DATABASE_UNAVAILABLE', undefined, {
        retry_after_seconds: DATABASE_RETRY_AFTER_SECONDS,
      });
    }
    if (error instanceof StorageUnavailableError) {
      // The bucket is down or gone: not a bug, nothing was recorded; the message names the store
      // and stays in the log.
      request.log.error({ err: error }, 'request failed: image storage unavailable');
      reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      return sendProblem(reply, 'STORAGE_UNAVAILABLE', undefined, {
        retry_after_seconds: DATABASE_RETRY_AFTER_SECONDS,
      });
    }
    request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, 'INTERNAL', 'something went wrong on our side; the log has the details');
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 'ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`),
  );
}
