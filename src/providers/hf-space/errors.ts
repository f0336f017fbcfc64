import { PermanentError, QuotaExceededError, RetryableError, type ProviderError } from '../errors.js';
import { errorForStatus, parseRetryAfterMs, readErrorDetail } from '../http.js';

/**
 * ZeroGPU refuses a token whose daily GPU seconds are spent, in words such as "You have exceeded
 * your GPU quota (60s requested vs. 56s left). … retry in 0:09:48" or "…free ZeroGPU quota …
 * Try again in 23:14:07" (wording from user reports; the `spaces` package is not public).
 */
const ZERO_GPU_QUOTA =
  /exceeded your (?:free )?(?:zero)?gpu quota|zerogpu quota exceeded|gpu quota exceeded|pending credits exceeded/i;
const RETRY_IN = /(?:retry|try again) in (\d+):(\d{1,2}):(\d{1,2})/i;
/** Gradio's own validation words (a component's preprocess or a `gr.validate`): the input is wrong. */
const VALIDATION = /validation error|invalid (?:value|input|image|file)|must be (?:between|one of|an? )/i;

/** "retry in H:MM:SS" → ms, if the message says when. */
export function parseRetryIn(message: string): number | undefined {
  const match = RETRY_IN.exec(message);
  if (!match) return undefined;
  const [hours, minutes, seconds] = match.slice(1).map(Number) as [number, number, number];
  return ((hours * 60 + minutes) * 60 + seconds) * 1000;
}

/**
 * The words of an `event: error` frame. Before Gradio 6.13 it is `data: null`; from 6.13
 * `{"error": msg|null, "title"?: …}`; an unexpected server error is a bare JSON string.
 */
export function errorEventText(data: string): { message: string | undefined; title: string | undefined } {
  try {
    const parsed = JSON.parse(data) as unknown;
    if (typeof parsed === 'string') return { message: parsed, title: undefined };
    if (parsed && typeof parsed === 'object') {
      const { error, title } = parsed as { error?: unknown; title?: unknown };
      return {
        message: typeof error === 'string' ? error : undefined,
        title: typeof title === 'string' ? title : undefined,
      };
    }
  } catch {
    // not JSON: the text itself
    if (data.trim() !== '') return { message: data.trim(), title: undefined };
  }
  return { message: undefined, title: undefined };
}

/** An `event: error` as a decision: ZeroGPU quota cools the token, validation fails, the rest retries. */
export function spaceErrorFor(data: string, what: string): ProviderError {
  const { message, title } = errorEventText(data);
  const words = [title, message]
    .filter(Boolean)
    .join(': ')
    .replace(/<[^>]*>/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const text = words === '' ? 'the Space reported an error without details' : words.slice(0, 300);
  const full = `${what}: ${text}`;
  if (ZERO_GPU_QUOTA.test(words)) return new QuotaExceededError(full, parseRetryIn(words));
  if (VALIDATION.test(words)) return new PermanentError('PROVIDER_REJECTED', full);
  return new RetryableError('PROVIDER_UNAVAILABLE', full);
}

/**
 * A failed upload or call: a ZeroGPU quota text is a quota answer whatever the status (the call
 * route turns queue refusals into HTTP errors with the reason as `detail`); else the usual mapping.
 */
export async function spaceHttpError(response: Response, what: string): Promise<ProviderError> {
  const detail = await readErrorDetail(response);
  const message = `${what}: HTTP ${response.status}: ${detail}`;
  if (ZERO_GPU_QUOTA.test(detail)) {
    return new QuotaExceededError(message, parseRetryIn(detail) ?? parseRetryAfterMs(response.headers));
  }
  return errorForStatus(response.status, response.headers, message);
}
