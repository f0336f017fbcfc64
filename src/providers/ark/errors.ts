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
 * Ark's error body is OpenAI's shape, `{error: {code, message, param, type}}`, with Ark's own
 * codes (Ark API reference, "错误码", docs 82379/1299023). The SDK obeys `x-should-retry` above
 * the status (volcenginesdkarkruntime `_base_client.py`), and so do we.
 */

const DETAIL_MAX_CHARS = 300;
const short = (text: string) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > DETAIL_MAX_CHARS ? `${flat.slice(0, DETAIL_MAX_CHARS)}…` : flat;
};
const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** Input refused by content review: `SensitiveContentDetected[.…]`, `Input…SensitiveContentDetected`, `Input…RiskDetection`. */
const INPUT_REFUSAL = /^(SensitiveContentDetected|Input\w*SensitiveContentDetected|Input\w*RiskDetection)/;
/** The generated image refused by review: another sample may pass. */
const OUTPUT_REFUSAL = /^Output\w*(SensitiveContentDetected|RiskDetection)/;
/** Money: an overdue account or a used-up quota (waiting a minute fixes neither). */
const MONEY = /^(AccountOverdueError|OperationDenied\.ServiceOverdue|QuotaExceeded)/;
/** Model or endpoint missing, or not activated on this account: a setup problem, not a bad key. */
const SETUP = /^(ModelNotOpen|InvalidEndpointOrModel|InvalidEndpoint\.NotFound|OperationDenied\.ServiceNotOpen)/;

export async function arkFailure(response: Response, what: string): Promise<ProviderError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // a body that broke off: the status alone decides
  }
  let error: Record<string, unknown> | undefined;
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === 'object' && body.error !== null) error = body.error as Record<string, unknown>;
  } catch {
    error = undefined;
  }
  const code = str(error?.code) ?? '';
  const detail = short(str(error?.message) ?? text) || `HTTP ${response.status}`;
  const requestId = response.headers.get('x-request-id') ?? response.headers.get('x-tt-logid');
  const message = `${what}: HTTP ${response.status}${code ? ` ${code}` : ''}: ${detail}${requestId ? ` (request ${requestId})` : ''}`;
  const { status, headers } = response;

  if (INPUT_REFUSAL.test(code))
    return new PermanentError('CONTENT_POLICY', `${what}: refused by Ark's content review: ${detail}`);
  if (OUTPUT_REFUSAL.test(code)) {
    return new RetryableError(
      'PROVIDER_OUTPUT_REFUSED',
      `${what}: Ark's review refused the generated image; another sample may pass: ${detail}`,
    );
  }
  if (MONEY.test(code)) return new QuotaExceededError(message, parseRetryAfterMs(headers));
  if (SETUP.test(code)) return new PermanentError('PROVIDER_REJECTED', message);
  if (status === 401 || code === 'AuthenticationError')
    return new CredentialError('PROVIDER_CREDENTIAL_REJECTED', message);
  // A working key without access to this resource: disabling the key would stop the models it may use.
  if (status === 403) return new PermanentError('PROVIDER_FORBIDDEN', message);
  if (status === 429) return new RateLimitedError(message, parseRetryAfterMs(headers));
  // "Closed or temporarily unavailable" endpoint: Ark says to retry later.
  if (code === 'InvalidEndpoint.ClosedEndpoint') return new RetryableError('PROVIDER_UNAVAILABLE', message);
  const shouldRetry = headers.get('x-should-retry');
  if (shouldRetry === 'true') return new RetryableError('PROVIDER_UNAVAILABLE', message);
  if (shouldRetry === 'false') return new PermanentError('PROVIDER_REJECTED', message);
  return errorForStatus(status, headers, message);
}
