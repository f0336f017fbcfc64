import { abortReason, AttemptAborted, type AbortWhy } from '../providers/abort.js';
import type { Logger } from 'pino';
import type { QueueConfig } from '../config/config.js';
import type { Hints } from '../db/notifier.js';
import type { Pool } from '../db/pool.js';
import { describeError, TaskErrorCodes } from '../domain/errors.js';
import { decideRetry } from '../domain/retry-policy.js';
import type { TaskError } from '../domain/task.js';
import { recordCredentialOutcome, readCredentialSecret, type CredentialOutcome } from '../credentials/store.js';
import type { SecretBox } from '../credentials/secret-box.js';
import {
  CredentialError,
  ProviderError,
  QuotaExceededError,
  RateLimitedError,
  type ProviderErrorClass,
} from '../providers/errors.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Credential, GeneratedImage, PreviewImage, TaskInput } from '../providers/types.js';
import { readStoredBytes } from '../inputs/read-stored.js';
import { StorageUnavailableError, type Storage } from '../storage/storage.js';
import type { OutputConfig } from '../config/output.js';
import { finishImage, finishOptionsFor } from '../images/finish-image.js';
import { imageObjectKeys, thumbnailKey } from '../images/thumbnail.js';
import {
  cancelAttempt,
  failAttempt,
  recordedImageKeys,
  releaseAttempt,
  reportProgress,
  retryAttemptLater,
  saveProviderRef,
  succeedAttempt,
  type StoredImage,
} from '../tasks/attempt.js';
import type { Lease, TaskRow } from '../tasks/rows.js';
import { fallThrough, hasNextTarget } from '../routing/task-route.js';
import { createProgressReporter } from './progress-reporter.js';
import type { PreviewLimits } from '../config/previews.js';
import { untilDatabaseAnswers } from './until-database-answers.js';

export interface AttemptDeps {
  pool: Pool;
  hints: Hints;
  registry: ProviderRegistry;
  storage: Storage;
  queue: QueueConfig;
  log: Logger;
  progressIntervalMs: number;
  /** Fires when the worker stops waiting for the database to write outcomes (see untilDatabaseAnswers). */
  abandon: AbortSignal;
  /** Opens pool credentials; undefined when no secret key is configured (then no credential exists). */
  secrets: SecretBox | undefined;
  /** How long a rate-limited credential rests when the provider named no time. */
  credentialCooldownMs: number;
  /** How often and how large progress previews may be stored (EASEL_PREVIEW_*). */
  previews: PreviewLimits;
  /** LICENSE_API_ENDPOINT is set: a success records its cost as an external charge. */
  externalBilling?: boolean;
  /** Quality for cleaning a provider's JPEG/WebP, and whether PNG output carries its parameters. */
  output: Pick<OutputConfig, 'quality' | 'embedMetadata'>;
}

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/** What a stored error says about an unexpected throwable; the details go to the worker log only. */
export const INTERNAL_ERROR_MESSAGE = 'internal error while running the attempt; see the worker log';

/**
 * What an attempt needs from the queue, and nothing else: its input and credential, progress,
 * the provider's request id, a place for its images, and the outcome. The local worker's queue
 * is the database (`databaseQueue`); a remote worker's is Easel's HTTP API (worker/remote). Both
 * run the same attempt logic below, so error mapping and abort reasons cannot drift apart.
 * Every write presents the attempt's lease and answers whether it still held.
 */
export interface AttemptQueue<T extends AttemptTask> {
  input(task: T): Promise<TaskInput>;
  /** The credential of `pool` the attempt runs with; throws CredentialGoneError when there is none. */
  credential(task: T, pool: string): Promise<Credential>;
  progress(lease: Lease, stage: string, pct: number, preview?: PreviewImage): Promise<boolean>;
  saveProviderRef(lease: Lease, ref: string): Promise<boolean>;
  /** Keys carry the lease token; on a failure none of this attempt's images are left recorded. */
  storeImages(task: T, lease: Lease, images: GeneratedImage[]): Promise<StoredImage[]>;
  succeed(task: T, lease: Lease, stored: StoredImage[], seconds: number): Promise<void>;
  fail(task: T, lease: Lease, report: FailureReport, seconds: number): Promise<void>;
}

/** What the attempt logic reads of a claimed task; the queue keeps the rest. */
export interface AttemptTask {
  id: string;
  provider: string;
  attempt: number;
  lease_token: string | null;
}

/** How an attempt that produced no result ended, classified where it ran. */
export interface FailureReport {
  /** Why the worker aborted it, if it did. */
  why: AbortWhy | undefined;
  failure: Failure;
  /** The throwable itself, for outcomes about the credential (local queue only). */
  error?: unknown;
  credential?: Credential | undefined;
  /** The claimed credential was deleted before the attempt started: hand back, uncounted. */
  credentialGone?: boolean;
}

export interface AttemptRunDeps {
  registry: ProviderRegistry;
  log: Logger;
  progressIntervalMs: number;
  /** How often and how large progress previews may be sent (EASEL_PREVIEW_*). */
  previews: PreviewLimits;
}

/**
 * Run one claimed attempt to its end and record the outcome, fenced by the attempt's lease.
 * Invariants: the progress reporter is stopped (and its last write finished) before the final
 * write, so no event of the attempt follows its terminal one; images end up recorded with the
 * task or deleted, never left behind by an attempt that lost.
 */
export async function runAttempt(deps: AttemptDeps, task: TaskRow, controller: AbortController): Promise<void> {
  return runAttemptWith(databaseQueue(deps), deps, task, controller);
}

export async function runAttemptWith<T extends AttemptTask>(
  queue: AttemptQueue<T>,
  deps: AttemptRunDeps,
  task: T,
  controller: AbortController,
): Promise<void> {
  const signal = controller.signal;
  const lease: Lease = { taskId: task.id, token: task.lease_token!, provider: task.provider };
  const log = deps.log.child({ task: task.id, provider: task.provider, attempt: task.attempt });
  const startedAt = performance.now();
  const elapsedSeconds = () => (performance.now() - startedAt) / 1000;
  const progress = createProgressReporter((stage, pct, preview) => queue.progress(lease, stage, pct, preview), {
    minIntervalMs: deps.progressIntervalMs,
    onError: (error) => log.warn({ err: error }, 'progress write failed'),
    preview: deps.previews,
  });
  let credential: Credential | undefined;
  let providerSeconds: number | undefined;
  const seconds = () => providerSeconds ?? elapsedSeconds();
  const fail = async (error: unknown) => {
    const why = abortReason(signal);
    const failure = classify(error, why, credential?.secret);
    if (failure.unexpected && why !== 'lease_lost' && why !== 'cancel' && why !== 'shutdown') {
      log.error({ err: error }, 'unexpected error in attempt');
    }
    const report: FailureReport = {
      why,
      failure,
      error,
      credential,
      credentialGone: error instanceof CredentialGoneError,
    };
    await queue.fail(task, lease, report, seconds());
  };

  let images: GeneratedImage[];
  try {
    const provider = deps.registry.get(task.provider);
    if (!provider) throw new UnknownProviderError(task.provider);
    if (provider.credentialPool) credential = await queue.credential(task, provider.credentialPool);
    images = await provider.run(await queue.input(task), {
      signal,
      ...(credential ? { credential } : {}),
      progress: progress.report,
      saveProviderRef: async (ref) => {
        if (await queue.saveProviderRef(lease, ref)) return;
        const lost = new AttemptAborted('lease_lost');
        controller.abort(lost);
        throw lost;
      },
      recordPredictTime: (value) => {
        if (Number.isFinite(value) && value >= 0) providerSeconds = value;
      },
      log,
      fetch: globalThis.fetch,
    });
  } catch (error) {
    await progress.stop();
    await fail(error);
    return;
  }
  await progress.stop();
  if (abortReason(signal) === 'lease_lost') {
    log.warn('attempt lost its lease; result discarded');
    return;
  }
  let stored: StoredImage[];
  try {
    stored = await queue.storeImages(task, lease, images);
  } catch (error) {
    await fail(error);
    return;
  }
  await queue.succeed(task, lease, stored, seconds());
}

/** The local worker's queue: the database and storage, written directly. */
function databaseQueue(deps: AttemptDeps): AttemptQueue<TaskRow> {
  const logFor = (task: TaskRow) => deps.log.child({ task: task.id, provider: task.provider, attempt: task.attempt });
  return {
    input: (task) => toTaskInput(task, deps.storage),
    credential: (task) => openCredential(deps, task),
    progress: (lease, stage, pct, preview) => reportProgress(deps.pool, deps.hints, lease, stage, pct, preview),
    saveProviderRef: (lease, ref) => saveProviderRef(deps.pool, lease, ref),
    storeImages: (task, lease, images) => storeImages(deps, task, lease, images, logFor(task)),
    succeed: async (task, lease, stored, seconds) => {
      await recordSuccess(deps, task, lease, logFor(task), stored, seconds);
    },
    fail: async (task, lease, report, seconds) => {
      await recordFailure(deps, task, lease, logFor(task), report, seconds);
    },
  };
}

/** What recording an outcome needs: the database, storage for discarded images, the retry policy. */
export type OutcomeDeps = Pick<
  AttemptDeps,
  'pool' | 'hints' | 'storage' | 'queue' | 'abandon' | 'credentialCooldownMs' | 'externalBilling'
>;

/** The claim picked a credential (migration 0007); it may have been deleted since. */
export class CredentialGoneError extends Error {
  constructor() {
    super('the credential chosen for this attempt was deleted before the attempt started');
  }
}

async function openCredential(deps: AttemptDeps, task: TaskRow): Promise<Credential> {
  if (!task.credential_id) throw new CredentialGoneError();
  if (!deps.secrets) throw new Error('a credential was claimed, but this worker has no secret key to open it');
  const opened = await readCredentialSecret(deps.pool, deps.secrets, task.credential_id);
  if (!opened) throw new CredentialGoneError();
  return { id: task.credential_id, label: opened.label, secret: opened.secret };
}

/**
 * A 429, a quota answer or a refusal is about the credential, not the task: the credential
 * cools down (or is disabled), and the task goes back to the queue uncounted for another one.
 */
function credentialOutcome(error: unknown, failure: Failure, cooldownMs: number): CredentialOutcome | undefined {
  if (error instanceof QuotaExceededError) return { kind: 'cool_down', code: error.code, ms: error.retryAfterMs };
  if (error instanceof RateLimitedError) {
    return { kind: 'cool_down', code: error.code, ms: error.retryAfterMs ?? cooldownMs };
  }
  // The reason is the stored (redacted) message: a refusal often quotes the token it refused.
  if (error instanceof CredentialError) return { kind: 'disable', code: error.code, reason: failure.error.message };
  if (error instanceof ProviderError) return { kind: 'note', code: error.code };
  return undefined;
}

/**
 * Record a success; whether it is recorded (won now, or by an earlier try whose answer was
 * lost). When it lost, the images are deleted again.
 */
export async function recordSuccess(
  deps: OutcomeDeps,
  task: Pick<TaskRow, 'id'>,
  lease: Lease,
  log: Logger,
  stored: StoredImage[],
  seconds: number,
): Promise<boolean> {
  const retry = { abandon: deps.abandon, log, what: 'the attempt outcome' };
  const won = await untilDatabaseAnswers(
    () =>
      succeedAttempt(
        deps.pool,
        deps.hints,
        lease,
        { predictTimeSeconds: seconds, images: stored },
        deps.externalBilling ?? false,
      ),
    retry,
  );
  if (won) return true;
  // The lease is gone, or an earlier try won but its answer was lost: keep what a row references.
  const keys = stored.map((image) => image.storage_key);
  const recorded = await untilDatabaseAnswers(() => recordedImageKeys(deps.pool, task.id, keys), retry);
  if (recorded.size > 0) return true;
  log.warn('attempt finished after losing its lease; result discarded');
  await deleteImages(deps.storage, keys.flatMap(imageObjectKeys), log);
  return false;
}

/**
 * Record an attempt that produced no result, as `report` classified it: cancel, hand back,
 * retry later, move to the route's next target, or fail. Whether the lease still held.
 */
export async function recordFailure(
  deps: OutcomeDeps,
  task: Pick<TaskRow, 'attempt' | 'max_attempts' | 'route'>,
  lease: Lease,
  log: Logger,
  report: FailureReport,
  seconds: number,
): Promise<boolean> {
  const { why, failure, error, credential } = report;
  const retry = { abandon: deps.abandon, log, what: 'the attempt outcome' };
  if (why === 'lease_lost') {
    log.warn('attempt lost its lease; aborted without recording anything');
    return false;
  }
  if (why === 'cancel') {
    const won = await untilDatabaseAnswers(() => cancelAttempt(deps.pool, deps.hints, lease, seconds), retry);
    log.info('attempt canceled');
    return won;
  }
  if (why === 'shutdown') {
    const won = await untilDatabaseAnswers(() => releaseAttempt(deps.pool, deps.hints, lease), retry);
    log.info('attempt handed back to the queue for shutdown');
    return won;
  }
  if (report.credentialGone) {
    const won = await untilDatabaseAnswers(() => releaseAttempt(deps.pool, deps.hints, lease, failure.error), retry);
    log.warn('credential deleted before the attempt started; task queued again');
    return won;
  }
  const outcome =
    credential && why !== 'timeout' ? credentialOutcome(error, failure, deps.credentialCooldownMs) : undefined;
  if (credential && outcome) {
    await untilDatabaseAnswers(() => recordCredentialOutcome(deps.pool, credential.id, outcome), retry);
    if (outcome.kind !== 'note') {
      const won = await untilDatabaseAnswers(() => releaseAttempt(deps.pool, deps.hints, lease, failure.error), retry);
      const level = outcome.kind === 'disable' ? 'warn' : 'info';
      log[level](
        { code: failure.error.code, credential: credential.label },
        `credential ${outcome.kind === 'disable' ? 'disabled' : 'cooling down'}; task queued for another credential`,
      );
      return won;
    }
  }
  const decision = decideRetry({
    errorClass: failure.errorClass,
    attempt: task.attempt,
    maxAttempts: task.max_attempts,
    retryAfterMs: failure.retryAfterMs,
    policy: { baseMs: deps.queue.retryBaseMs, maxMs: deps.queue.retryMaxMs },
  });
  if (decision.action === 'retry') {
    // Only our own timeout leaves the upstream request running; any other failure ended it.
    const keepProviderRef = why === 'timeout';
    const won = await untilDatabaseAnswers(
      () =>
        retryAttemptLater(deps.pool, deps.hints, lease, failure.error, decision.delayMs, seconds, { keepProviderRef }),
      retry,
    );
    log.info({ code: failure.error.code, delayMs: decision.delayMs }, 'attempt failed; will retry');
    return won;
  }
  // Out of attempts on this target for provider-side reasons: a route moves on. A permanent
  // failure (invalid input, content policy) is the request's fault, not the target's: it ends here.
  if (failure.errorClass !== 'permanent' && hasNextTarget(task)) {
    const moved = await untilDatabaseAnswers(() => fallThrough(deps.pool, deps.hints, lease, failure.error), retry);
    if (moved) {
      log.info(
        { code: failure.error.code, route: task.route?.name },
        "target failed; task moved to the route's next target",
      );
      return true;
    }
  }
  const won = await untilDatabaseAnswers(
    () => failAttempt(deps.pool, deps.hints, lease, failure.error, seconds),
    retry,
  );
  log.info({ code: failure.error.code }, 'task failed');
  return won;
}

class UnknownProviderError extends Error {
  constructor(readonly provider: string) {
    super(`this worker has no provider named ${provider}`);
  }
}

export interface Failure {
  errorClass: ProviderErrorClass;
  error: TaskError;
  retryAfterMs?: number | undefined;
  unexpected?: boolean;
}

/**
 * Every throwable becomes one retry class and a stored error with a non-empty message. The
 * credential's secret is cut out of the message: a provider may echo what it was sent.
 */
function classify(error: unknown, abortedFor: AbortWhy | undefined, secret?: string): Failure {
  const failure = classifyError(error, abortedFor);
  if (secret && failure.error.message.includes(secret)) {
    failure.error = { ...failure.error, message: failure.error.message.split(secret).join('[redacted]') };
  }
  return failure;
}

function classifyError(error: unknown, abortedFor: AbortWhy | undefined): Failure {
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
  if (error instanceof CredentialGoneError) {
    return { errorClass: 'retryable', error: { code: 'CREDENTIAL_GONE', message: error.message } };
  }
  if (error instanceof StorageUnavailableError) {
    // The bucket is down or gone: the image is made again on a later attempt. The store's
    // address and its answer go to the log, not to the task's user.
    return {
      errorClass: 'retryable',
      error: { code: TaskErrorCodes.STORAGE_UNAVAILABLE, message: 'the image store could not be reached; retrying' },
      unexpected: true,
    };
  }
  // A bug or an infrastructure hiccup (disk, database): worth another attempt, and worth a log
  // line. Its text may hold file paths or database details, so the task gets a safe message.
  return {
    errorClass: 'retryable',
    error: { code: TaskErrorCodes.INTERNAL, message: INTERNAL_ERROR_MESSAGE },
    unexpected: true,
  };
}

/** The input image was checked and stored at submit; missing bytes are an infrastructure fault. */
class MissingInputImageError extends Error {
  constructor(key: string) {
    super(`the task's input image ${key} is missing from storage`);
  }
}

export async function toTaskInput(task: TaskRow, storage: Storage): Promise<TaskInput> {
  let inputImage: TaskInput['inputImage'];
  if (task.input_image) {
    const data = await readStoredBytes(storage, task.input_image.storage_key);
    if (!data) throw new MissingInputImageError(task.input_image.storage_key);
    const { content_type: contentType, width, height } = task.input_image;
    inputImage = { data, contentType, width, height };
  }
  return taskInputOf(task, inputImage);
}

/** The adapter's input from a claimed task's fields: one mapping for local and remote workers. */
export function taskInputOf(
  task: Pick<TaskRow, 'id' | 'kind' | 'model' | 'params' | 'provider_options' | 'attempt' | 'provider_ref'>,
  inputImage: TaskInput['inputImage'],
): TaskInput {
  const params = task.params;
  return {
    ...(inputImage ? { inputImage } : {}),
    ...(params.strength !== undefined ? { strength: params.strength } : {}),
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

/** Where an attempt's images start: every key of the attempt begins with this. */
export const attemptImagePrefix = (taskId: string, leaseToken: string): string =>
  // Sharded by the id's random tail so no folder grows huge and folders are made once.
  `tasks/${taskId.slice(-2)}/${taskId}-${leaseToken.slice(0, 8)}-`;

export const attemptImageKey = (taskId: string, leaseToken: string, index: number, contentType: string): string =>
  `${attemptImagePrefix(taskId, leaseToken)}${index}.${EXTENSIONS[contentType] ?? 'bin'}`;

/**
 * Keys carry the lease token, so bytes from a superseded attempt can never overwrite the
 * images of the attempt that won; only the winner's keys get recorded. Each image is finished
 * (converted, cleaned, thumbnailed: src/images/finish-image.ts) before its first byte is stored,
 * and its thumbnail goes under `thumbnailKey(key)`. When any put fails, everything this attempt
 * wrote is deleted again: nothing will ever record it.
 */
export async function storeImages(
  { storage, output }: Pick<AttemptDeps, 'storage' | 'output'>,
  task: TaskRow,
  lease: Lease,
  images: GeneratedImage[],
  log: Logger,
): Promise<StoredImage[]> {
  const optionsFor = finishOptionsFor(task, output);
  // Keys are listed before their put: a put that fails half way may still leave bytes behind.
  const touched: string[] = [];
  const results = await Promise.allSettled(
    images.map(async (generated, index): Promise<StoredImage> => {
      const { image, thumbnail } = await finishImage(generated.data, optionsFor(generated.seed));
      const key = attemptImageKey(task.id, lease.token, index, image.contentType);
      touched.push(key);
      await storage.put(key, image.data, image.contentType);
      touched.push(thumbnailKey(key));
      await storage.put(thumbnailKey(key), thumbnail.data, thumbnail.contentType);
      return {
        index,
        storage_key: key,
        content_type: image.contentType,
        bytes: image.data.length,
        width: image.width,
        height: image.height,
        seed: generated.seed,
        sha256: image.sha256,
        thumbnail_bytes: thumbnail.data.length,
        thumbnail_width: thumbnail.width,
        thumbnail_height: thumbnail.height,
        thumbnail_sha256: thumbnail.sha256,
      };
    }),
  );
  const failed = results.find((result) => result.status === 'rejected');
  if (!failed) return results.map((result) => (result as PromiseFulfilledResult<StoredImage>).value);
  await deleteImages(storage, touched, log);
  throw failed.reason;
}

/** Best effort: a file left behind wastes space, but must not change the attempt's outcome. */
export async function deleteImages(storage: Storage, keys: string[], log: Logger): Promise<void> {
  const results = await Promise.allSettled(keys.map((key) => storage.delete(key)));
  for (const result of results) {
    if (result.status === 'rejected') log.warn({ err: result.reason }, 'could not delete a discarded image');
  }
}
