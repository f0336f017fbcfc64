import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, ErrorCodes, type ErrorCode } from '../domain/errors.js';

/** Fastify's own error codes that are the client's fault, mapped onto ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_JSON',
};

/** One rule code per validation keyword: what clients branch on in `errors[].code`. */
const RULE_CODES: Record<string, string> = {
  required: 'REQUIRED',
  additionalProperties: 'UNKNOWN_FIELD',
  type: 'WRONG_TYPE',
  minLength: 'TOO_SHORT',
  maxLength: 'TOO_LONG',
  pattern: 'BAD_FORMAT',
  format: 'BAD_FORMAT',
  minimum: 'TOO_SMALL',
  maximum: 'TOO_LARGE',
  multipleOf: 'NOT_MULTIPLE',
  const: 'NOT_ALLOWED',
  enum: 'NOT_ALLOWED',
  anyOf: 'NOT_ALLOWED',
};

interface AjvIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

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

function describeIssues(issues: AjvIssue[], context: string) {
  return issues.map((issue) => {
    const name =
      (issue.params.missingProperty as string | undefined) ??
      (issue.params.additionalProperty as string | undefined) ??
      issue.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const field = name || context;
    const code = RULE_CODES[issue.keyword] ?? 'INVALID';
    const message =
      issue.keyword === 'additionalProperties'
        ? `${field} is not a known field`
        : `${field} ${issue.message ?? 'is invalid'}`;
    return { field, code, message };
  });
}

export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError & { validationContext?: string }, request, reply) => {
    if (error instanceof ApiError) return sendProblem(reply, error.code, error.message, error.extra);
    if (error.validation) {
      const errors = describeIssues(error.validation as AjvIssue[], error.validationContext ?? 'body');
      return sendProblem(reply, 'VALIDATION_FAILED', errors.map((issue) => issue.message).join('; '), { errors });
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) return sendProblem(reply, mapped, error.message);
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return sendProblem(reply, 'VALIDATION_FAILED', error.message);
    }
    request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, 'INTERNAL', 'something went wrong on our side; the log has the details');
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 'ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`),
  );
}
