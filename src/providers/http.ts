import sharp from 'sharp';
import {
  CredentialError,
  PermanentError,
  type ProviderError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from './errors.js';
import type { GeneratedImage, RunContext } from './types.js';

/**
 * What every hosted adapter needs around `fetch`: network failures and HTTP statuses turned
 * into the provider error classes, Retry-After read the way providers send it, bodies and
 * downloads read under a size limit, and image bytes checked before they become a result.
 * Adapters map what is special about their provider and leave the rest to these.
 */

type FetchContext = Pick<RunContext, 'fetch' | 'signal'>;

/** The longest provider message kept in a task error: enough to act on, not a whole HTML page. */
const DETAIL_MAX_CHARS = 300;
/** Largest image download accepted from a provider. */
export const DEFAULT_IMAGE_MAX_BYTES = 50 * 1024 * 1024;

/**
 * A provider's "try again in": `retry-after-ms` (OpenAI), then `Retry-After` as seconds or as
 * an HTTP date. Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.has('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return Math.round(ms);
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * `fetch` that fails the provider way: a network error is retryable, and an abort (cancel,
 * timeout, shutdown) surfaces as the signal's own reason so the worker knows which it was.
 */
export async function providerFetch(
  ctx: FetchContext,
  url: string | URL,
  init: RequestInit & { what: string },
): Promise<Response> {
  const { what, ...request } = init;
  try {
    return await ctx.fetch(url, { ...request, signal: ctx.signal });
  } catch (error) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    throw new RetryableError(
      'PROVIDER_UNREACHABLE',
      `${what}: could not reach the provider (${networkReason(error)})`,
      {
        cause: error,
      },
    );
  }
}

function networkReason(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return cause instanceof Error ? cause.message : 'network error';
}

/** A body as bytes, refusing more than `maxBytes` without reading it all. */
export async function readBodyLimited(
  ctx: FetchContext,
  response: Response,
  maxBytes: number,
  what: string,
): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer is larger than ${maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body ?? []) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        await response.body?.cancel();
        throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer is larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (error instanceof RetryableError) throw error;
    throw new RetryableError('PROVIDER_UNREACHABLE', `${what}: the answer broke off (${networkReason(error)})`, {
      cause: error,
    });
  }
  return Buffer.concat(chunks);
}

/** A body as JSON; an answer that is not JSON is a malformed (retryable) answer. */
export async function readJson<T = unknown>(
  ctx: FetchContext,
  response: Response,
  what: string,
  maxBytes = 10 * 1024 * 1024,
): Promise<T> {
  const body = await readBodyLimited(ctx, response, maxBytes, what);
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer is not JSON (HTTP ${response.status})`);
  }
}

/**
 * The human part of an error body, short: `detail`, `error.message`, `error` (string),
 * `message` or `title` of a JSON body, or the start of a text body.
 */
export async function readErrorDetail(response: Response): Promise<string> {
  let text: string;
  try {
    text = await response.text();
  } catch {
    return `HTTP ${response.status}`;
  }
  let detail = text;
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const error = body.error as Record<string, unknown> | string | undefined;
    const candidates = [body.detail, typeof error === 'object' ? error?.message : error, body.message, body.title];
    const found = candidates.find((value) => typeof value === 'string' && value.trim() !== '');
    if (typeof found === 'string') detail = found;
  } catch {
    // not JSON: keep the text
  }
  detail = detail.replace(/\s+/g, ' ').trim();
  if (detail === '') return `HTTP ${response.status}`;
  return detail.length > DETAIL_MAX_CHARS ? `${detail.slice(0, DETAIL_MAX_CHARS)}…` : detail;
}

/**
 * The usual meaning of an HTTP failure: 401/403 the credential is refused, 402 its quota or
 * credit is gone, 429 slow down, 408/409/5xx try again, any other 4xx the request itself is
 * wrong. Adapters check their provider's special cases first and fall back to this.
 */
export function errorForStatus(status: number, headers: Headers, message: string): ProviderError {
  if (status === 401 || status === 403) return new CredentialError('PROVIDER_CREDENTIAL_REJECTED', message);
  if (status === 402) return new QuotaExceededError(message, parseRetryAfterMs(headers));
  if (status === 429) return new RateLimitedError(message, parseRetryAfterMs(headers));
  if (status === 408 || status === 409 || status >= 500) return new RetryableError('PROVIDER_UNAVAILABLE', message);
  return new PermanentError('PROVIDER_REJECTED', message);
}

/** Throw the provider error for a failed response, with `what` and the provider's own words. */
export async function failFromResponse(response: Response, what: string): Promise<never> {
  const detail = await readErrorDetail(response);
  throw errorForStatus(response.status, response.headers, `${what}: HTTP ${response.status}: ${detail}`);
}

const KEPT_FORMATS: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/**
 * Bytes a provider returned, checked to be an image. PNG, JPEG and WebP are kept as they are;
 * any other format sharp reads (GIF, AVIF, TIFF…) becomes PNG. Bytes that are no image are a
 * malformed answer (retryable: providers do send truncated files now and then).
 */
export async function decodeImage(data: Buffer, seed: number, what: string): Promise<GeneratedImage> {
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(data, { limitInputPixels: 100_000_000 }).metadata();
  } catch {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the provider's answer is not an image`);
  }
  const { format, width, height } = metadata;
  if (!format || !width || !height) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the provider's answer is not an image`);
  }
  const contentType = KEPT_FORMATS[format];
  if (contentType) return { data, contentType, width, height, seed };
  const png = await sharp(data, { limitInputPixels: 100_000_000 }).png().toBuffer();
  return { data: png, contentType: 'image/png', width, height, seed };
}

/**
 * Download an output file the provider links to (no credential is sent: result URLs are
 * pre-signed), and check it is an image. A 404/410 means the provider already deleted it.
 */
export async function downloadImage(
  ctx: FetchContext,
  url: string,
  seed: number,
  what: string,
  maxBytes = DEFAULT_IMAGE_MAX_BYTES,
): Promise<GeneratedImage> {
  const response = await providerFetch(ctx, url, { what });
  if (!response.ok) {
    await response.body?.cancel();
    const gone = response.status === 404 || response.status === 410;
    throw new RetryableError(
      gone ? 'PROVIDER_OUTPUT_GONE' : 'PROVIDER_UNAVAILABLE',
      `${what}: downloading the output failed with HTTP ${response.status}`,
    );
  }
  return decodeImage(await readBodyLimited(ctx, response, maxBytes, what), seed, what);
}
