import { QuotaExceededError, RateLimitedError, type ProviderError } from '../errors.js';
import { errorForStatus, readErrorDetail } from '../http.js';

/**
 * NovelAI's failures (NestJS-style JSON `{"statusCode": n, "message": "…"}`) as provider
 * errors. What is special about NovelAI:
 *
 * - 429 "Concurrent generation is locked": the account is busy with another generation (one
 *   at a time per account). It sends no Retry-After; the account rests `concurrentWaitMs`,
 *   and the task goes back to the queue without spending an attempt.
 * - 402, or a 4xx saying Anlas or subscription: the account cannot pay for the image: quota.
 * - 401 and 403: the token or account is refused: the credential is disabled.
 * - anything else as the usual status table says (5xx retryable, other 4xx permanent).
 */
export async function novelAIFailure(
  response: Response,
  what: string,
  concurrentWaitMs: number,
): Promise<ProviderError> {
  const detail = await readErrorDetail(response);
  const message = `${what}: HTTP ${response.status}: ${detail}`;
  if (response.status === 429 && /concurren/i.test(detail)) {
    return new RateLimitedError(message, concurrentWaitMs);
  }
  if (response.status === 402 || (response.status < 500 && /anlas|subscription|insufficient/i.test(detail))) {
    return new QuotaExceededError(message);
  }
  return errorForStatus(response.status, response.headers, message);
}
