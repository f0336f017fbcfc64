import { PermanentError, RetryableError } from '../errors.js';
import { failFromResponse, providerFetch, readBodyLimited, readJson, DEFAULT_IMAGE_MAX_BYTES } from '../http.js';
import type { Backend } from '../self-hosted/backend.js';
import { backendUnavailable, unreachableCode } from '../self-hosted/unreachable.js';
import type { RunContext } from '../types.js';
import type { Graph } from './template.js';

/**
 * ComfyUI's HTTP routes (server.py `PromptServer.__init__`), each called through
 * `backendFetch`, the one place that decides how a backend is reached (auth header, and
 * the connection failures that mean "skip this backend for now").
 */

export type CallContext = Pick<RunContext, 'fetch' | 'signal'>;

/** How long an unreachable backend rests before the pool offers it again. */
export const UNREACHABLE_RETRY_AFTER_MS = 5000;

/**
 * Every request to a ComfyUI backend. A backend that refuses connections (stopped, rebooting,
 * off the network) is a rate limit on its credential, not a failure of the task: the pool
 * cools that backend down and the task goes back to the queue for another one, uncounted.
 */
export async function backendFetch(
  ctx: CallContext,
  backend: Backend,
  route: string,
  init: RequestInit & { what: string },
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (backend.authorization) headers.set('authorization', backend.authorization);
  try {
    return await providerFetch(ctx, backend.baseUrl + route, { ...init, headers });
  } catch (error) {
    const code = unreachableCode(error);
    if (code) throw backendUnavailable(init.what, backend, code, UNREACHABLE_RETRY_AFTER_MS, error);
    throw error;
  }
}

interface NodeError {
  errors?: Array<{ message?: string; details?: string }>;
  class_type?: string;
}

/** "Prompt outputs failed validation: CheckpointLoaderSimple (node 4): Value not in list: ckpt_name: …" */
function describeRefusal(body: { error?: unknown; node_errors?: unknown }): string {
  const error = body.error;
  const head =
    typeof error === 'string'
      ? error
      : typeof error === 'object' && error !== null
        ? String((error as { message?: unknown }).message ?? 'invalid prompt') +
          ((error as { details?: unknown }).details ? `: ${String((error as { details?: unknown }).details)}` : '')
        : 'invalid prompt';
  const nodes =
    typeof body.node_errors === 'object' && body.node_errors !== null && !Array.isArray(body.node_errors)
      ? Object.entries(body.node_errors as Record<string, NodeError>)
      : [];
  const parts = nodes.map(([id, node]) => {
    const reasons = (node.errors ?? []).map((e) => [e.message, e.details].filter(Boolean).join(': ')).join('; ');
    return `${node.class_type ?? 'node'} (node ${id}): ${reasons || 'invalid'}`;
  });
  const text = [head, ...parts].join('; ');
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

export interface QueuedPrompt {
  promptId: string;
  number: number;
}

/**
 * `POST /prompt`. `promptId` is chosen by us and sent along (ComfyUI honours a caller's
 * `prompt_id` since 2025; older servers pick their own, which the answer carries).
 */
export async function queuePrompt(
  ctx: CallContext,
  backend: Backend,
  body: { prompt: Graph; client_id: string; prompt_id: string },
): Promise<QueuedPrompt> {
  const what = 'comfyui: queueing the workflow';
  const response = await backendFetch(ctx, backend, '/prompt', {
    what,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status === 400) {
    const refusal = await readJson<{ error?: unknown; node_errors?: unknown }>(ctx, response, what).catch(() => ({}));
    throw new PermanentError('PROVIDER_REJECTED', `${what}: ComfyUI refused it: ${describeRefusal(refusal)}`);
  }
  if (!response.ok) await failFromResponse(response, what);
  const answer = await readJson<{ prompt_id?: unknown; number?: unknown }>(ctx, response, what);
  if (typeof answer.prompt_id !== 'string' || answer.prompt_id === '') {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer has no prompt_id`);
  }
  return { promptId: answer.prompt_id, number: typeof answer.number === 'number' ? answer.number : 0 };
}

export interface OutputImage {
  filename: string;
  subfolder: string;
  type: string;
}

export interface HistoryEntry {
  status?: { status_str?: string; completed?: boolean; messages?: Array<[string, Record<string, unknown>]> };
  outputs?: Record<string, { images?: OutputImage[] }>;
}

/** `GET /history/{id}`: undefined until the prompt has finished (ComfyUI answers `{}`). */
export async function readHistory(
  ctx: CallContext,
  backend: Backend,
  promptId: string,
): Promise<HistoryEntry | undefined> {
  const what = 'comfyui: reading the history';
  const response = await backendFetch(ctx, backend, `/history/${encodeURIComponent(promptId)}`, { what });
  if (!response.ok) await failFromResponse(response, what);
  const history = await readJson<Record<string, HistoryEntry>>(ctx, response, what);
  return history[promptId];
}

export interface QueueState {
  running: string[];
  pending: string[];
}

/**
 * `GET /queue`; each item is `[number, prompt_id, prompt, extra_data, outputs]`. `pending` is
 * in execution order (ComfyUI runs the lowest number first), so an index is a position.
 */
export async function readQueue(ctx: CallContext, backend: Backend): Promise<QueueState> {
  const what = 'comfyui: reading the queue';
  const response = await backendFetch(ctx, backend, '/queue', { what });
  if (!response.ok) await failFromResponse(response, what);
  const queue = await readJson<{ queue_running?: unknown; queue_pending?: unknown }>(ctx, response, what);
  const items = (list: unknown) =>
    (Array.isArray(list) ? list : [])
      .filter((item): item is [number, string] => Array.isArray(item) && typeof item[1] === 'string')
      .sort((a, b) => Number(a[0]) - Number(b[0]));
  return { running: items(queue.queue_running).map((i) => i[1]), pending: items(queue.queue_pending).map((i) => i[1]) };
}

/** `POST /queue {"delete":[id]}`: removes a prompt that has not started; a no-op otherwise. */
export async function deleteQueued(ctx: CallContext, backend: Backend, promptId: string): Promise<void> {
  const what = 'comfyui: deleting the queued prompt';
  const response = await backendFetch(ctx, backend, '/queue', {
    what,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ delete: [promptId] }),
  });
  if (!response.ok) await failFromResponse(response, what);
  await response.body?.cancel();
}

/**
 * `POST /interrupt {"prompt_id"}`. Current ComfyUI interrupts only when that prompt is the
 * running one; older servers ignore the body and interrupt whatever runs, so callers check
 * `/queue` first (see cancel.ts).
 */
export async function interruptPrompt(ctx: CallContext, backend: Backend, promptId: string): Promise<void> {
  const what = 'comfyui: interrupting the prompt';
  const response = await backendFetch(ctx, backend, '/interrupt', {
    what,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt_id: promptId }),
  });
  if (!response.ok) await failFromResponse(response, what);
  await response.body?.cancel();
}

/** `POST /upload/image` (multipart `image`, `type`, `overwrite`): the name LoadImage takes. */
export async function uploadImage(
  ctx: CallContext,
  backend: Backend,
  image: { data: Buffer; contentType: string; filename: string },
): Promise<string> {
  const what = 'comfyui: uploading the input image';
  const form = new FormData();
  form.set('image', new Blob([image.data], { type: image.contentType }), image.filename);
  form.set('type', 'input');
  form.set('overwrite', 'true');
  const response = await backendFetch(ctx, backend, '/upload/image', { what, method: 'POST', body: form });
  if (!response.ok) await failFromResponse(response, what);
  const answer = await readJson<{ name?: unknown; subfolder?: unknown }>(ctx, response, what);
  if (typeof answer.name !== 'string' || answer.name === '') {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer has no name`);
  }
  return typeof answer.subfolder === 'string' && answer.subfolder !== ''
    ? `${answer.subfolder}/${answer.name}`
    : answer.name;
}

/** `GET /view?filename=&subfolder=&type=`: an output file's bytes. */
export async function viewImage(ctx: CallContext, backend: Backend, image: OutputImage): Promise<Buffer> {
  const what = `comfyui: downloading ${image.filename}`;
  const query = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type });
  const response = await backendFetch(ctx, backend, `/view?${query}`, { what });
  if (response.status === 404) {
    await response.body?.cancel();
    throw new RetryableError('PROVIDER_OUTPUT_GONE', `${what}: the backend no longer has the file (HTTP 404)`);
  }
  if (!response.ok) await failFromResponse(response, what);
  return readBodyLimited(ctx, response, DEFAULT_IMAGE_MAX_BYTES, what);
}
