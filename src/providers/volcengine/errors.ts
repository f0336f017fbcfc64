import {
  CredentialError,
  PermanentError,
  type ProviderError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../errors.js';
import { errorForStatus, parseRetryAfterMs } from '../http.js';

/**
 * How the visual API fails, in two shapes:
 * - the service's own answer `{code, message, request_id, …}` with a business code (the Jimeng
 *   API references' error table);
 * - the OpenAPI gateway's `{ResponseMetadata: {Error: {Code, CodeN?, Message}}}` for signature,
 *   key, permission and flow-control failures (Volcengine/BytePlus "common error codes").
 */

/** Content review (风控) refused the input or the output: the same request fails the same way. */
const RISK_CODES: Record<number, string> = {
  50411: 'the input image did not pass content review',
  50412: 'the prompt did not pass content review',
  50413: 'the prompt contains sensitive or copyrighted words',
  50512: 'the generated text did not pass content review',
};
/**
 * Output review refusals the API reference marks "may retry": the review looks at what was
 * generated, and another sample may pass. Retried (counted), so a repeat refusal ends the task.
 */
const RETRYABLE_RISK_CODES: Record<number, string> = {
  50511: 'the generated image did not pass content review',
  50519: 'the generated image did not pass the copyright review',
};
const QPS_LIMIT = 50429;
const CONCURRENCY_LIMIT = 50430;

/** Gateway codes that mean this key is no good (wrong, deleted, disabled, or lacking permission). */
const CREDENTIAL_CODES = new Set([
  'InvalidAccessKey',
  'InvalidAccessKeyId',
  'AccessKeyNotExist',
  'InvalidAccessKeyStatus',
  'AccessKeyIsExpire',
  'SignatureDoesNotMatch',
  'MissingAuthenticationToken',
  'InvalidCredential',
  'InvalidAuthorization',
  'LackPolicy',
  'AccessDenied',
  'SessionTokenInvalid',
]);
/** Gateway codes for "too many requests". */
const FLOW_LIMIT_CODES = new Set([
  'FlowLimitExceeded',
  'AccountFlowLimitExceeded',
  'RequestLimitExceeded',
  'Throttling',
  'TooManyRequests',
]);
/** The account is out of money or has not activated the service: waiting does not fix it. */
const QUOTA_CODES = new Set([
  'AccountArrears',
  'AccountOverdue',
  'ServiceNotOpen',
  'NotActivated',
  'InsufficientBalance',
]);

export interface VisualAnswer {
  code?: unknown;
  message?: unknown;
  request_id?: unknown;
  data?: unknown;
  ResponseMetadata?: { RequestId?: unknown; Error?: { Code?: unknown; CodeN?: unknown; Message?: unknown } };
}

const DETAIL_MAX_CHARS = 300;
const short = (text: string) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > DETAIL_MAX_CHARS ? `${flat.slice(0, DETAIL_MAX_CHARS)}…` : flat;
};
const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * The provider error for a visual-API answer that is not a success (HTTP status and body), or
 * undefined when the body says success (`code` 10000).
 */
export function visualFailure(
  status: number,
  headers: Headers,
  body: VisualAnswer | undefined,
  what: string,
): ProviderError | undefined {
  const gateway = body?.ResponseMetadata?.Error;
  const requestId = str(body?.request_id) ?? str(body?.ResponseMetadata?.RequestId);
  const suffix = requestId ? ` (request ${requestId})` : '';

  if (gateway && (str(gateway.Code) || str(gateway.Message))) {
    const code = str(gateway.Code) ?? String(gateway.CodeN ?? '');
    const message = `${what}: HTTP ${status} ${code}: ${short(str(gateway.Message) ?? '')}${suffix}`;
    if (CREDENTIAL_CODES.has(code)) return new CredentialError('PROVIDER_CREDENTIAL_REJECTED', message);
    if (FLOW_LIMIT_CODES.has(code)) return new RateLimitedError(message, parseRetryAfterMs(headers));
    if (QUOTA_CODES.has(code)) return new QuotaExceededError(message, parseRetryAfterMs(headers));
    // Our clock is off, or the request took ages to arrive: signing again later may work.
    if (code === 'InvalidTimestamp') return new RetryableError('PROVIDER_UNAVAILABLE', message);
    return errorForStatus(status, headers, message);
  }

  const code = typeof body?.code === 'number' ? body.code : Number(body?.code);
  if (status === 200 && code === 10000) return undefined;
  const providerMessage = short(str(body?.message) ?? '');
  const message = `${what}: HTTP ${status}${Number.isFinite(code) ? ` code ${code}` : ''}: ${providerMessage || 'no message'}${suffix}`;

  const risk = RISK_CODES[code];
  if (risk) {
    return new PermanentError(
      'CONTENT_POLICY',
      `${what}: refused by Volcengine's content review: ${risk} (code ${code} ${providerMessage})${suffix}`,
    );
  }
  const retryableRisk = RETRYABLE_RISK_CODES[code];
  if (retryableRisk) {
    return new RetryableError(
      'PROVIDER_OUTPUT_REFUSED',
      `${what}: refused by Volcengine's content review: ${retryableRisk}; another sample may pass (code ${code} ${providerMessage})${suffix}`,
    );
  }
  if (code === QPS_LIMIT) return new RateLimitedError(`${message} [QPS limit]`, parseRetryAfterMs(headers));
  if (code === CONCURRENCY_LIMIT)
    return new RateLimitedError(`${message} [concurrency limit]`, parseRetryAfterMs(headers));
  // 50500/50501 (internal error) and anything else of 5xx: the service's fault, worth another try.
  if (status >= 500) return new RetryableError('PROVIDER_UNAVAILABLE', message);
  if (status === 200) {
    // A 200 with a failing business code we do not know: a 5xxxx code is the service's own
    // processing, anything else is read as a refusal of this request.
    if (code >= 50500 && code < 50600) return new RetryableError('PROVIDER_UNAVAILABLE', message);
    return new PermanentError('PROVIDER_REJECTED', message);
  }
  return errorForStatus(status, headers, message);
}
