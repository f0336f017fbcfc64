import { CredentialError, PermanentError, RetryableError } from '../errors.js';
import { errorForStatus, readJson } from '../http.js';
import type { Backend } from '../self-hosted/backend.js';
import { backendUnavailable, unreachableCode } from '../self-hosted/unreachable.js';
import type { PreviewImage, RunContext } from '../types.js';

/**
 * The WebUI API calls the adapter makes (`/sdapi/v1`, AUTOMATIC1111 `modules/api/api.py`; Forge
 * and SD.Next serve the same routes) and how their failures map onto provider errors.
 */

type ApiContext = Pick<RunContext, 'fetch' | 'signal'>;

export function headersFor(backend: Backend, json: boolean): Record<string, string> {
  return {
    ...(json ? { 'content-type': 'application/json' } : {}),
    ...(backend.authorization ? { authorization: backend.authorization } : {}),
  };
}

/**
 * POST a generation. A server that cannot be reached at all is not the task's fault: it is a
 * RateLimitedError on the backend's credential, so the worker rests that backend for
 * `cooldownMs` and hands the task, uncounted, to another one (or to this one once it answers).
 * A connection that breaks after the server took the request is an ordinary retryable failure.
 */
export async function postGeneration(
  ctx: ApiContext,
  backend: Backend,
  path: '/sdapi/v1/txt2img' | '/sdapi/v1/img2img',
  body: unknown,
  cooldownMs: number,
): Promise<unknown> {
  const what = `a1111 ${backend.baseUrl}`;
  let response: Response;
  try {
    response = await ctx.fetch(backend.baseUrl + path, {
      method: 'POST',
      headers: headersFor(backend, true),
      body: JSON.stringify(body),
      signal: ctx.signal,
    });
  } catch (error) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const code = unreachableCode(error);
    if (code) throw backendUnavailable('a1111', backend, code, cooldownMs, error);
    throw new RetryableError('PROVIDER_UNREACHABLE', `${what}: the connection failed (network error)`, {
      cause: error,
    });
  }
  if (!response.ok) throw await generationFailure(response, what);
  return readJson(ctx, response, what, 512 * 1024 * 1024);
}

/**
 * The WebUI's exception handler answers `{error, detail, body, errors}`; FastAPI's validation
 * answers 422 `{detail: [{loc, msg, type}]}`. The useful words are in `detail` or `errors`.
 */
async function describeFailure(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  let detail = text;
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (Array.isArray(body.detail)) {
      detail = body.detail
        .map((item: { loc?: unknown[]; msg?: unknown }) => {
          const where = Array.isArray(item.loc) ? item.loc.filter((part) => part !== 'body').join('.') : '';
          return where ? `${where}: ${String(item.msg)}` : String(item.msg);
        })
        .join('; ');
    } else {
      const parts = [body.error, body.detail, body.errors].filter(
        (value): value is string => typeof value === 'string' && value.trim() !== '',
      );
      if (parts.length > 0) detail = [...new Set(parts)].join(': ');
    }
  } catch {
    // not JSON: keep the text
  }
  detail = detail.replace(/\s+/g, ' ').trim() || `HTTP ${response.status}`;
  return detail.length > 300 ? `${detail.slice(0, 300)}…` : detail;
}

async function generationFailure(response: Response, what: string): Promise<Error> {
  const detail = await describeFailure(response);
  const message = `${what}: HTTP ${response.status}: ${detail}`;
  // Without --api the WebUI serves its UI but no /sdapi routes (FastAPI's bare "Not Found"):
  // this server cannot take tasks until its admin restarts it, which is what a disabled
  // credential says. Other 404s name what the request asked for ("Sampler not found").
  if (response.status === 404 && detail === 'Not Found') {
    return new CredentialError(
      'PROVIDER_CREDENTIAL_REJECTED',
      `${what}: the server has no /sdapi/v1 API; start the WebUI with --api`,
    );
  }
  if (response.status === 422) return new PermanentError('PROVIDER_REJECTED', message);
  // Out of GPU memory surfaces as a 500 with OutOfMemoryError; a smaller task or a retry on
  // another server may pass, so it stays retryable like every other 5xx.
  return errorForStatus(response.status, response.headers, message);
}

export interface ProgressSnapshot {
  /** 0..1 of the whole job. */
  progress: number;
  preview?: PreviewImage;
  /** The base64 text of the preview, to tell a new preview from the one already reported. */
  previewKey?: string;
}

/** PNG, JPEG or WebP by their magic bytes: the WebUI's live preview format is a server setting. */
export function sniffImageType(data: Buffer): string | undefined {
  if (data.length >= 8 && data.readUInt32BE(0) === 0x89504e47) return 'image/png';
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'image/jpeg';
  if (data.length >= 12 && data.toString('ascii', 0, 4) === 'RIFF' && data.toString('ascii', 8, 12) === 'WEBP') {
    return 'image/webp';
  }
  return undefined;
}

/**
 * One look at `/sdapi/v1/progress`. Undefined when the answer is unusable: progress is a
 * courtesy, and the generation request itself decides the outcome.
 */
export async function readProgress(ctx: ApiContext, backend: Backend): Promise<ProgressSnapshot | undefined> {
  let response: Response;
  try {
    response = await ctx.fetch(`${backend.baseUrl}/sdapi/v1/progress?skip_current_image=false`, {
      headers: headersFor(backend, false),
      signal: ctx.signal,
    });
  } catch {
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    return undefined;
  }
  let body: { progress?: unknown; current_image?: unknown };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    return undefined;
  }
  if (typeof body.progress !== 'number' || !Number.isFinite(body.progress)) return undefined;
  const snapshot: ProgressSnapshot = { progress: Math.max(0, Math.min(1, body.progress)) };
  if (typeof body.current_image === 'string' && body.current_image !== '') {
    const data = Buffer.from(body.current_image.replace(/^data:[^,]*,/, ''), 'base64');
    const contentType = sniffImageType(data);
    if (contentType) {
      snapshot.preview = { data, contentType };
      snapshot.previewKey = body.current_image;
    }
  }
  return snapshot;
}

/**
 * `POST /sdapi/v1/interrupt`: the WebUI stops the running job after the current step and
 * answers the generation request with what it has. Server-wide, which is safe because a
 * backend runs one Easel task at a time (its credential concurrency, 1 by default). Best effort,
 * with its own short deadline: the attempt's signal has already fired.
 */
export async function interruptJob(fetchImpl: typeof fetch, backend: Backend): Promise<boolean> {
  try {
    const response = await fetchImpl(`${backend.baseUrl}/sdapi/v1/interrupt`, {
      method: 'POST',
      headers: headersFor(backend, false),
      signal: AbortSignal.timeout(5000),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}
