import {
  CredentialError,
  PermanentError,
  type ProviderError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../errors.js';
import { errorForStatus, parseRetryAfterMs } from '../http.js';

/** OpenAI's error body (`ErrorResponse` in the API reference; openai-node `APIError` reads the same fields). */
interface OpenAIErrorBody {
  message?: unknown;
  type?: unknown;
  param?: unknown;
  code?: unknown;
}

const DETAIL_MAX_CHARS = 300;

/** Safety refusals: `content_policy_violation` (DALL·E) and `moderation_blocked` (GPT image models). */
const CONTENT_POLICY_CODES = new Set(['content_policy_violation', 'moderation_blocked']);
/**
 * Money, not speed: `insufficient_quota` comes as a 429 and `billing_hard_limit_reached` as a
 * 400, but waiting a minute fixes neither; the credential rests until someone pays.
 */
const QUOTA_CODES = new Set(['insufficient_quota', 'billing_hard_limit_reached']);

function short(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > DETAIL_MAX_CHARS ? `${flat.slice(0, DETAIL_MAX_CHARS)}…` : flat;
}

function parseError(text: string): OpenAIErrorBody | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown };
    return typeof body.error === 'object' && body.error !== null ? (body.error as OpenAIErrorBody) : undefined;
  } catch {
    return undefined;
  }
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * The provider error for a failed OpenAI response. OpenAI's special cases first (quota,
 * content policy, both told apart by `error.code` or `error.type`), then the usual meaning of
 * the status. Messages keep OpenAI's own words; OpenAI masks keys in its 401 message itself.
 */
export async function openAIFailure(response: Response, what: string): Promise<ProviderError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // a body that broke off: the status alone decides
  }
  const error = parseError(text);
  const code = str(error?.code) ?? str(error?.type);
  const detail = short(str(error?.message) ?? text) || `HTTP ${response.status}`;
  const requestId = response.headers.get('x-request-id');
  const message = `${what}: HTTP ${response.status}${code ? ` ${code}` : ''}: ${detail}${requestId ? ` (request ${requestId})` : ''}`;
  const { status, headers } = response;

  if (code && QUOTA_CODES.has(code)) return new QuotaExceededError(message, parseRetryAfterMs(headers));
  if (status === 400 && code && CONTENT_POLICY_CODES.has(code)) return new PermanentError('CONTENT_POLICY', message);
  if (status === 401) return new CredentialError('PROVIDER_CREDENTIAL_REJECTED', message);
  // OpenAI answers a bad key with 401. Its 403s are about this request on a working key (an
  // organization not yet verified for gpt-image-1, an unsupported region): disabling the key
  // would also stop the models it may use.
  if (status === 403) return new PermanentError('PROVIDER_FORBIDDEN', message);
  if (status === 429) return new RateLimitedError(message, parseRetryAfterMs(headers));
  // OpenAI's own verdict, which its clients put above the status (openai-node `shouldRetry`).
  const shouldRetry = headers.get('x-should-retry');
  if (shouldRetry === 'true') return new RetryableError('PROVIDER_UNAVAILABLE', message);
  if (shouldRetry === 'false') return new PermanentError('PROVIDER_REJECTED', message);
  if (status === 408 || status === 409 || status >= 500) return new RetryableError('PROVIDER_UNAVAILABLE', message);
  return errorForStatus(status, headers, message);
}
