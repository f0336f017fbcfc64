import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { QueueConfig } from '../config/config.js';
import type { Hints } from '../db/notifier.js';
import type { Pool } from '../db/pool.js';
import { describeError, TaskErrorCodes } from '../domain/errors.js';
import { decideRetry } from '../domain/retry-policy.js';
import type { TaskError } from '../domain/task.js';
import { ProviderError, type ProviderErrorClass } from '../providers/errors.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { GeneratedImage, TaskInput } from '../providers/types.js';
import type { Storage } from '../storage/storage.js';
import {
  cancelAttempt,
  failAttempt,
  releaseAttempt,
  reportProgress,
  retryAttemptLater,
  saveProviderRef,
  succeedAttempt,
  type StoredImage,
} from '../tasks/attempt.js';
import type { Lease, TaskRow } from '../tasks/rows.js';
import { createProgressReporter } from './progress-reporter.js';

/** Why the worker pulled the plug on an attempt; carried as the AbortSignal's reason. */
export class AttemptAborted extends Error {
  override name = 'AbortError';
  constructor(readonly why: 'cancel' | 'shutdown' | 'timeout') {
    super(`attempt aborted: ${why}`);
  }
}

export interface AttemptDeps {
  pool: Pool;
  hints: Hints;
  registry: ProviderRegistry;
  storage: Storage;
  queue: QueueConfig;
  log: Logger;
  progressIntervalMs: number;
}

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/** Run one claimed attempt to its end and record the outcome, fenced by the attempt's lease. */
export async function runAttempt(deps: AttemptDeps, task: TaskRow, signal: AbortSignal): Promise<void> {
  const lease: Lease = { taskId: task.id, token: task.lease_token!, provider: task.provider };
  const log = deps.log.child({ task: task.id, provider: task.provider, attempt: task.attempt });
  const startedAt = performance.now();
  const elapsedSeconds = () => (performance.now() - startedAt) / 1000;

  try {
    const provider = deps.registry.get(task.provider);
    if (!provider) throw new UnknownProviderError(task.provider);
    const progress = createProgressReporter((stage, pct) => reportProgress(deps.pool, deps.hints, lease, stage, pct), {
      minIntervalMs: deps.progressIntervalMs,
      onError: (error) => log.warn({ err: error }, 'progress write failed'),
    });
    const images = await provider.run(toTaskInput(task), {
      signal,
      progress,
      saveProviderRef: async (ref) => {
        await saveProviderRef(deps.pool, lease, ref);
      },
      log,
      fetch: globalThis.fetch,
    });
    const stored = await storeImages(deps.storage, task, lease, images);
    const won = await succeedAttempt(deps.pool, deps.hints, lease, {
      predictTimeSeconds: elapsedSeconds(),
      images: stored,
    });
    if (!won) log.warn('attempt finished after losing its lease; result discarded');
  } catch (error) {
    await recordFailure(deps, task, lease, error, signal, elapsedSeconds(), log);
  }
}

async function recordFailure(
  deps: AttemptDeps,
  task: TaskRow,
  lease: Lease,
  error: unknown,
  signal: AbortSignal,
  seconds: number,
  log: Logger,
): Promise<void> {
  const why = signal.aborted && signal.reason instanceof AttemptAborted ? signal.reason.why : undefined;
  if (why === 'cancel') {
    await cancelAttempt(deps.pool, deps.hints, lease, seconds);
    log.info('attempt canceled');
    return;
  }
  if (why === 'shutdown') {
    await releaseAttempt(deps.pool, deps.hints, lease);
    log.info('attempt handed back to the queue for shutdown');
    return;
  }
  const failure = classify(error, why);
  const decision = decideRetry({
    errorClass: failure.errorClass,
    attempt: task.attempt,
    maxAttempts: task.max_attempts,
    retryAfterMs: failure.retryAfterMs,
    policy: { baseMs: deps.queue.retryBaseMs, maxMs: deps.queue.retryMaxMs },
  });
  if (decision.action === 'retry') {
    await retryAttemptLater(deps.pool, deps.hints, lease, failure.error, decision.delayMs, seconds);
    log.info({ code: failure.error.code, delayMs: decision.delayMs }, 'attempt failed; will retry');
  } else {
    await failAttempt(deps.pool, deps.hints, lease, failure.error, seconds);
    log.info({ code: failure.error.code }, 'task failed');
  }
  if (failure.unexpected) log.error({ err: error }, 'unexpected error in attempt');
}

class UnknownProviderError extends Error {
  constructor(readonly provider: string) {
    super(`this worker has no provider named ${provider}`);
  }
}

interface Failure {
  errorClass: ProviderErrorClass;
  error: TaskError;
  retryAfterMs?: number | undefined;
  unexpected?: boolean;
}

/** Every throwable becomes one retry class and a stored error with a non-empty message. */
function classify(error: unknown, abortedFor: 'timeout' | undefined): Failure {
  if (abortedFor === 'timeout') {
    return {
      errorClass: 'retryable',
      error: { code: TaskErrorCodes.ATTEMPT_TIMED_OUT, message: 'the attempt ran past the task timeout' },
    };
  }
  if (error instanceof ProviderError) {
    return {
      errorClass: error.errorClass,
      error: { code: error.code, message: describeError(error) },
      retryAfterMs: 'retryAfterMs' in error ? (error.retryAfterMs as number | undefined) : undefined,
    };
  }
  if (error instanceof UnknownProviderError) {
    return { errorClass: 'permanent', error: { code: 'UNKNOWN_PROVIDER', message: error.message } };
  }
  // A bug or an infrastructure hiccup (disk, database): worth another attempt, and worth a log line.
  return {
    errorClass: 'retryable',
    error: { code: TaskErrorCodes.INTERNAL, message: describeError(error) },
    unexpected: true,
  };
}

function toTaskInput(task: TaskRow): TaskInput {
  const params = task.params;
  return {
    taskId: task.id,
    kind: task.kind,
    model: task.model,
    prompt: params.prompt,
    negativePrompt: params.negative_prompt,
    width: params.width,
    height: params.height,
    steps: params.steps,
    guidance: params.guidance,
    n: params.n,
    seed: params.seed,
    options: task.provider_options,
    attempt: task.attempt,
    providerRef: task.provider_ref,
  };
}

/**
 * Keys carry the lease token, so bytes from a superseded attempt can never overwrite the
 * images of the attempt that won; only the winner's keys get recorded.
 */
async function storeImages(
  storage: Storage,
  task: TaskRow,
  lease: Lease,
  images: GeneratedImage[],
): Promise<StoredImage[]> {
  return Promise.all(
    images.map(async (image, index) => {
      const extension = EXTENSIONS[image.contentType] ?? 'bin';
      // Sharded by the id's random tail so no folder grows huge and folders are made once.
      const key = `tasks/${task.id.slice(-2)}/${task.id}-${lease.token.slice(0, 8)}-${index}.${extension}`;
      await storage.put(key, image.data, image.contentType);
      return {
        index,
        storage_key: key,
        content_type: image.contentType,
        bytes: image.data.length,
        width: image.width,
        height: image.height,
        seed: image.seed,
        sha256: createHash('sha256').update(image.data).digest('hex'),
      };
    }),
  );
}
