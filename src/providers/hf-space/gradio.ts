import { RetryableError } from '../errors.js';
import { decodeImage, providerFetch, readBodyLimited, readJson, DEFAULT_IMAGE_MAX_BYTES } from '../http.js';
import type { GeneratedImage, RunContext } from '../types.js';
import { spaceErrorFor, spaceHttpError } from './errors.js';
import { readSseEvents } from './sse.js';

/**
 * The Gradio HTTP API as `@gradio/client` and the curl guide speak it (Gradio 5.x and 6.x, whose
 * routes live under `/gradio_api`): upload files, `POST /call/{api}` for an event id, then read
 * that call's event stream. Every request carries the Hugging Face token, as the JS client does
 * with `hf_token` (`client/js/src/utils/upload_files.ts`): private Spaces need it and ZeroGPU
 * counts GPU time against the token's user.
 */
export interface SpaceCall {
  /** The Space's root URL, e.g. https://owner-name.hf.space */
  space: string;
  apiName: string;
  what: string;
}

export interface FileData {
  path: string;
  url?: string | null;
  meta?: { _type: 'gradio.FileData' };
  orig_name?: string;
  mime_type?: string;
}

/** What `saveProviderRef` keeps: enough to read the same call's stream on a later attempt. */
export interface CallRef {
  eventId: string;
  /**
   * The stream already delivered its end (complete or error). Gradio hands each message out once
   * (routes.py `queue_data_helper` takes it off the session's queue), so reading the stream again
   * would only ever give heartbeats: a later attempt starts a new call instead.
   */
  consumed?: boolean;
  /** The uploaded input path: a result pointing at it is the input echoed back, not an output. */
  inputPath: string;
  /** Which of the task's n images this call makes. */
  index: number;
}

const apiRoot = (space: string) => `${space}/gradio_api`;
const auth = (ctx: RunContext): Record<string, string> =>
  ctx.credential ? { authorization: `Bearer ${ctx.credential.secret}` } : {};

/** `POST /gradio_api/upload` (multipart, parts named `files`) → the server paths. */
export async function uploadFile(
  ctx: RunContext,
  call: SpaceCall,
  bytes: Buffer,
  contentType: string,
  name: string,
): Promise<string> {
  const form = new FormData();
  form.append('files', new Blob([bytes], { type: contentType }), name);
  const response = await providerFetch(ctx, `${apiRoot(call.space)}/upload`, {
    what: `${call.what} upload`,
    method: 'POST',
    headers: auth(ctx),
    body: form,
  });
  if (!response.ok) throw await spaceHttpError(response, `${call.what} upload`);
  const paths = await readJson<unknown>(ctx, response, `${call.what} upload`);
  if (!Array.isArray(paths) || typeof paths[0] !== 'string') {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${call.what} upload: the answer holds no file path`);
  }
  return paths[0];
}

/**
 * `POST /gradio_api/call/{api}` with one value per input → the call's event id. The call's
 * messages are kept under the event id itself (the GET route reads them as its session).
 */
export async function startCall(ctx: RunContext, call: SpaceCall, data: unknown[]): Promise<string> {
  const response = await providerFetch(ctx, `${apiRoot(call.space)}/call/${call.apiName}`, {
    what: call.what,
    method: 'POST',
    headers: { ...auth(ctx), 'content-type': 'application/json' },
    body: JSON.stringify({ data }),
  });
  // 503 queue full, 422 a validator refused the input, 400 other errors, 401/403 the token.
  if (!response.ok) throw await spaceHttpError(response, call.what);
  const body = await readJson<{ event_id?: unknown }>(ctx, response, call.what);
  if (typeof body.event_id !== 'string' || body.event_id === '') {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${call.what}: the answer holds no event_id`);
  }
  return body.event_id;
}

/**
 * The Space no longer knows the call: it restarted, or it dropped the call's events when an
 * earlier reader went away (routes.py: a disconnected stream runs `clean_events`). Gradio says
 * so inside a 200 stream, `event: error` with `data: "404: Session not found."`.
 */
export class CallGoneError extends Error {}
const SESSION_NOT_FOUND = /session not found/i;

/**
 * Read `GET /gradio_api/call/{api}/{event_id}` to its end: `complete` gives the outputs, `error`
 * the Space's refusal; `generating` and `progress` are progress, `heartbeat` keeps the line open.
 */
export async function awaitCall(ctx: RunContext, call: SpaceCall, eventId: string): Promise<unknown[]> {
  const response = await providerFetch(ctx, `${apiRoot(call.space)}/call/${call.apiName}/${eventId}`, {
    what: call.what,
    headers: { ...auth(ctx), accept: 'text/event-stream' },
  });
  if (response.status === 404) {
    await response.body?.cancel();
    throw new CallGoneError(`${call.what}: the Space no longer knows call ${eventId}`);
  }
  if (!response.ok || !response.body) throw await spaceHttpError(response, call.what);
  try {
    for await (const event of readSseEvents(response.body!, call.what)) {
      switch (event.event) {
        case 'complete':
          return completeOutputs(event.data, call.what);
        case 'error':
          if (SESSION_NOT_FOUND.test(event.data)) {
            throw new CallGoneError(`${call.what}: the Space no longer knows call ${eventId}`);
          }
          throw spaceErrorFor(event.data, call.what);
        case 'generating':
          ctx.progress('generating');
          break;
        case 'progress':
          ctx.progress('generating', progressPct(event.data));
          break;
        default:
          // heartbeat, and events newer Gradio versions may add
          break;
      }
    }
  } catch (error) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (error instanceof CallGoneError || (error instanceof Error && 'errorClass' in error)) throw error;
    throw new RetryableError('PROVIDER_UNREACHABLE', `${call.what}: the event stream broke off`, { cause: error });
  }
  throw new RetryableError('PROVIDER_BAD_OUTPUT', `${call.what}: the event stream ended without a result`);
}

function completeOutputs(data: string, what: string): unknown[] {
  try {
    const outputs = JSON.parse(data) as unknown;
    if (Array.isArray(outputs)) return outputs;
  } catch {
    // fall through
  }
  throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the result is not a list of outputs`);
}

/** `progress_data: [{index, length, progress}]` of the queue protocol, if a Space sends it here. */
function progressPct(data: string): number | undefined {
  try {
    const parsed = JSON.parse(data) as {
      progress_data?: Array<{ index?: number; length?: number; progress?: number }>;
    };
    const unit = parsed.progress_data?.[0];
    if (!unit) return undefined;
    if (typeof unit.progress === 'number') return Math.min(100, Math.max(0, unit.progress * 100));
    if (typeof unit.index === 'number' && typeof unit.length === 'number' && unit.length > 0) {
      return Math.min(100, (unit.index / unit.length) * 100);
    }
  } catch {
    // progress is a hint only
  }
  return undefined;
}

/**
 * Ask the Space to stop a call, best effort with its own short timeout (the attempt's signal has
 * already fired, and a failed cancel must never hide why the attempt stopped). Gradio's
 * `POST /gradio_api/cancel {event_id, session_hash, fn_index}` cancels the task named
 * `{session_hash}_{fn_index}`; for `/call` the session is the event id, and the endpoint's
 * fn_index is its dependency id in `GET /config`. Closing the stream alone already makes Gradio
 * drop the call's queued events.
 */
export async function cancelCall(ctx: RunContext, call: SpaceCall, eventId: string): Promise<void> {
  const signal = AbortSignal.timeout(3000);
  try {
    const config = await ctx.fetch(`${call.space}/config`, { headers: auth(ctx), signal });
    const body = config.ok
      ? ((await config.json()) as { dependencies?: Array<{ id?: unknown; api_name?: unknown }> })
      : {};
    const dependencies = body.dependencies ?? [];
    const position = dependencies.findIndex((dependency) => dependency.api_name === call.apiName);
    if (position < 0) {
      ctx.log.warn({ eventId }, 'cannot cancel the Space call: its endpoint is not in the Space config');
      return;
    }
    const id = dependencies[position]!.id;
    const response = await ctx.fetch(`${apiRoot(call.space)}/cancel`, {
      method: 'POST',
      headers: { ...auth(ctx), 'content-type': 'application/json' },
      body: JSON.stringify({
        event_id: eventId,
        session_hash: eventId,
        fn_index: typeof id === 'number' ? id : position,
      }),
      signal,
    });
    await response.body?.cancel();
  } catch (error) {
    ctx.log.warn({ err: error, eventId }, 'cancelling the Space call failed');
  }
}

/**
 * Download an output FileData. Its `url` points at the Space's `/gradio_api/file=` route; the
 * token goes along only when the file is on the Space itself (a private Space serves its files
 * to the token's user only), never to another host.
 */
export async function downloadOutput(
  ctx: RunContext,
  call: SpaceCall,
  file: FileData,
  seed: number,
): Promise<GeneratedImage> {
  const url = file.url ?? `${apiRoot(call.space)}/file=${file.path}`;
  const sameOrigin = new URL(url, call.space).origin === new URL(call.space).origin;
  const response = await providerFetch(ctx, new URL(url, call.space), {
    what: call.what,
    headers: sameOrigin ? auth(ctx) : {},
  });
  if (!response.ok) {
    await response.body?.cancel();
    const gone = response.status === 404 || response.status === 410;
    throw new RetryableError(
      gone ? 'PROVIDER_OUTPUT_GONE' : 'PROVIDER_UNAVAILABLE',
      `${call.what}: downloading the output failed with HTTP ${response.status}`,
    );
  }
  return decodeImage(await readBodyLimited(ctx, response, DEFAULT_IMAGE_MAX_BYTES, call.what), seed, call.what);
}
