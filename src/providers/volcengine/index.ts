import { checkOneImageTask } from '../check-task.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, RateLimitedError, RetryableError } from '../errors.js';
import { decodeImage, downloadImage } from '../http.js';
import type { GeneratedImage, Provider, RunContext, TaskInput } from '../types.js';
import { callVisual, GET_RESULT_ACTION, SUBMIT_ACTION } from './api.js';
import type { JimengConfig } from './config.js';
import { parseVolcengineSecret } from './keys.js';
import { findJimengModel, JIMENG_MODELS, providerSeed, resultReqJson, type JimengModel } from './models.js';
import type { VolcengineKeys } from './signer.js';

const WHAT = 'jimeng';

/** `data.status` of GetResult (API reference): `done` is success or failure, told by the outer code. */
type TaskStatus = 'in_queue' | 'generating' | 'done' | 'not_found' | 'expired';
const STATUSES: readonly string[] = ['in_queue', 'generating', 'done', 'not_found', 'expired'];

/**
 * Consecutive failed polls tolerated before giving up. A blip on GetResult must not end the
 * attempt: the worker forgets the provider task of a failed attempt, and a new one is paid again.
 */
export const POLL_RETRIES = 5;
const POLL_BACKOFF_MAX_MS = 10_000;

/** Failures of a poll that a later poll may not see: network, 5xx, malformed answers, rate limits. */
function transient(error: unknown): boolean {
  if (error instanceof RateLimitedError) return true;
  return (
    error instanceof RetryableError &&
    ['PROVIDER_UNREACHABLE', 'PROVIDER_UNAVAILABLE', 'PROVIDER_BAD_OUTPUT'].includes(error.code)
  );
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  }
}

const invalid = (code: string, message: string) => new PermanentError(code, `${WHAT}: ${message}`);

interface Poller {
  ctx: RunContext;
  config: JimengConfig;
  keys: VolcengineKeys;
  reqKey: string;
  reqJson: string;
}

async function getResult(p: Poller, taskId: string): Promise<{ status: TaskStatus; data: Record<string, unknown> }> {
  const what = `${WHAT}: task ${taskId}`;
  const data = await callVisual(
    p.ctx,
    p.config,
    p.keys,
    GET_RESULT_ACTION,
    { req_key: p.reqKey, task_id: taskId, req_json: p.reqJson },
    what,
  );
  if (typeof data.status !== 'string' || !STATUSES.includes(data.status)) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer has no known status`);
  }
  return { status: data.status as TaskStatus, data };
}

function report(ctx: RunContext, status: TaskStatus): void {
  if (status === 'in_queue') ctx.progress('queued', 0);
  // Volcengine gives no percentage while generating.
  else if (status === 'generating') ctx.progress('generating');
}

/**
 * Poll until `done`, reporting queue states; transient poll failures are waited out. A task
 * Volcengine does not know is `gone` on the first poll of a resumed task (it expired: submit
 * again), and a retryable failure later (it vanished while we watched).
 */
async function waitForDone(p: Poller, taskId: string, resuming: boolean): Promise<Record<string, unknown> | 'gone'> {
  let failures = 0;
  let first = true;
  for (;;) {
    let result: Awaited<ReturnType<typeof getResult>>;
    try {
      result = await getResult(p, taskId);
    } catch (error) {
      if (!transient(error) || p.ctx.signal.aborted || ++failures > POLL_RETRIES) throw error;
      await pause(Math.min(p.config.pollIntervalMs * 2 ** failures, POLL_BACKOFF_MAX_MS), p.ctx.signal);
      continue;
    }
    failures = 0;
    if (result.status === 'done') return result.data;
    if (result.status === 'not_found' || result.status === 'expired') {
      if (resuming && first) {
        p.ctx.log.info(
          { task: taskId, status: result.status },
          'earlier Jimeng task cannot be resumed; submitting a new one',
        );
        return 'gone';
      }
      throw new RetryableError('PROVIDER_OUTPUT_GONE', `${WHAT}: task ${taskId} is ${result.status} at Volcengine`);
    }
    if (resuming && first) p.ctx.log.info({ task: taskId, status: result.status }, 'resuming the earlier Jimeng task');
    first = false;
    report(p.ctx, result.status);
    await pause(p.config.pollIntervalMs, p.ctx.signal);
  }
}

interface Finished {
  taskId: string;
  data: Record<string, unknown>;
}

/** The earlier attempt's task, polled to the end; undefined when Volcengine no longer has it. */
async function resume(p: Poller, taskId: string): Promise<Finished | undefined> {
  const data = await waitForDone(p, taskId, true);
  return data === 'gone' ? undefined : { taskId, data };
}

async function submitAndWait(p: Poller, model: JimengModel, input: TaskInput): Promise<Finished> {
  p.ctx.progress('submitting', 0);
  const submitted = await callVisual(p.ctx, p.config, p.keys, SUBMIT_ACTION, model.body(input), `${WHAT}: submitting`);
  if (typeof submitted.task_id !== 'string' || submitted.task_id === '') {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${WHAT}: submitting: the answer has no task_id`);
  }
  const taskId = submitted.task_id;
  // Before anything else: from here on, a second submit would be a second bill.
  await p.ctx.saveProviderRef(taskId);
  p.ctx.progress('queued', 0);
  const data = await waitForDone(p, taskId, false);
  // Only a resumed task can be `gone`; a new one that vanishes is an error inside waitForDone.
  if (data === 'gone') throw new RetryableError('PROVIDER_OUTPUT_GONE', `${WHAT}: task ${taskId} vanished`);
  return { taskId, data };
}

async function imagesOf(
  ctx: RunContext,
  data: Record<string, unknown>,
  seed: number,
  taskId: string,
): Promise<GeneratedImage[]> {
  const what = `${WHAT}: task ${taskId}`;
  const strings = (value: unknown) =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string' && item !== '') : [];
  const inline = strings(data.binary_data_base64);
  const urls = strings(data.image_urls);
  const images: GeneratedImage[] = [];
  if (inline.length > 0) {
    for (const [index, b64] of inline.entries()) {
      images.push(await decodeImage(Buffer.from(b64, 'base64'), seed + index, what));
    }
  } else {
    for (const [index, url] of urls.entries()) {
      if (!/^https?:\/\//i.test(url))
        throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: a result is not an http(s) URL`);
      images.push(await downloadImage(ctx, url, seed + index, what));
      ctx.progress('downloading', (100 * (index + 1)) / urls.length);
    }
  }
  if (images.length === 0)
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: done, but the answer holds no images`);
  return images;
}

/**
 * Jimeng (即梦) on Volcengine's visual API: `CVSync2AsyncSubmitTask`, then `CVSync2AsyncGetResult`
 * until the task is done, every call signed with the pool's key pair (`volcengine`). The task id
 * is saved as soon as Volcengine accepts the task, so a rescued attempt polls it instead of
 * paying for a second one. The API has no cancel action: on cancel the attempt stops polling and
 * the task finishes unseen at Volcengine.
 */
export function createJimengProvider(config: JimengConfig): Provider {
  const models = JIMENG_MODELS.map((model) => model.info);
  return {
    id: 'jimeng',
    credentialPool: 'volcengine',
    models: () => models,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const model = findJimengModel(input.model);
      if (!model) throw invalid('UNKNOWN_MODEL', `no model ${input.model}`);
      if (!ctx.credential) {
        throw invalid('PROVIDER_CREDENTIAL_MISSING', 'run without a key pair from the volcengine pool');
      }
      const keys = parseVolcengineSecret(ctx.credential.secret);
      checkOneImageTask(WHAT, model, input);
      const poller: Poller = { ctx, config, keys, reqKey: model.info.id, reqJson: resultReqJson(input) };

      const resumed = input.providerRef ? await resume(poller, input.providerRef) : undefined;
      const { taskId, data } = resumed ?? (await submitAndWait(poller, model, input));
      ctx.progress('downloading', 0);
      return imagesOf(ctx, data, providerSeed(input.seed), taskId);
    },
  };
}
