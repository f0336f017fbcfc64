import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import sharp from 'sharp';
import type { QueueConfig, WorkerConfig } from '../../config/config.js';
import type { Hints } from '../../db/notifier.js';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import { readStoredBytes } from '../../inputs/read-stored.js';
import type { Storage } from '../../storage/storage.js';
import { recordedImageKeys, reportProgress, saveProviderRef } from '../../tasks/attempt.js';
import type { OutputConfig } from '../../config/output.js';
import type { GeneratedImage, PreviewImage } from '../../providers/types.js';
import { taskUnderLease } from '../../tasks/remote-workers.js';
import type { Lease, TaskRow } from '../../tasks/rows.js';
import {
  attemptImageKey,
  attemptImagePrefix,
  deleteImages,
  recordFailure,
  recordSuccess,
  storeImages,
  type OutcomeDeps,
} from '../../worker/run-attempt.js';
import { ProblemSchema } from '../schemas/task.js';
import {
  AttemptParams,
  DoneAnswer,
  FailBody,
  ImageParams,
  ProgressBody,
  ProviderRefBody,
  SucceedBody,
  UploadAnswer,
  UploadQuery,
  type PreviewBody,
} from '../schemas/worker.js';

/** The largest image a remote worker may upload: far above any generated image, bounded for the disk. */
export const UPLOAD_MAX_BYTES = 64 * 1024 * 1024;

/** The app's logger is the pino logger Easel made (api/app.ts); outcome code takes pino's type. */
const logOf = (request: FastifyRequest): Logger => request.log as unknown as Logger;

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
const problems = { 400: ProblemSchema, 401: ProblemSchema, 409: ProblemSchema };

/**
 * The calls of one claimed attempt. Each presents the lease token and goes through the same fenced
 * writes (tasks/attempt.ts) and outcome logic (worker/run-attempt.ts) a local worker uses: a stale
 * token matches no row, so the answer is 409 LEASE_LOST and nothing changed.
 */
export const workerAttemptRoutes: FastifyPluginAsyncTypebox<{
  pool: Pool;
  hints: Hints;
  storage: Storage;
  queue: QueueConfig;
  worker: WorkerConfig;
  output: Pick<OutputConfig, 'quality' | 'embedMetadata'>;
  externalBilling: boolean;
}> = async (app, options) => {
  const { pool, hints, storage } = options;
  const tags = ['workers'];
  // The outcome is written once, here; the remote worker retries a call whose answer it missed
  // (every write is fenced and repeat-safe), so the API does not wait out a database outage.
  const outcomeDeps: OutcomeDeps = {
    pool,
    hints,
    storage,
    queue: options.queue,
    abandon: AbortSignal.abort(),
    credentialCooldownMs: options.worker.credentialCooldownMs,
    externalBilling: options.externalBilling,
  };
  const leaseOf = (task: { id: string; provider: string }, token: string): Lease => ({
    taskId: task.id,
    token,
    provider: task.provider,
  });
  const held = async (taskId: string, token: string): Promise<TaskRow> => {
    const task = await taskUnderLease(pool, taskId, token);
    if (!task) throw new ApiError('LEASE_LOST');
    return task;
  };

  // Image bytes arrive as a stream and go to storage as one; only this scope parses them.
  app.addContentTypeParser(IMAGE_TYPES, (_request, payload, done) => done(null, payload));

  app.post(
    '/v1/worker/tasks/:id/progress',
    {
      schema: {
        summary: "Report an attempt's progress, optionally with a preview image",
        tags,
        params: AttemptParams,
        body: ProgressBody,
        response: { 200: DoneAnswer, ...problems },
      },
    },
    async (request) => {
      const { lease_token, stage, progress, preview } = request.body;
      const task = await held(request.params.id, lease_token);
      const image = preview && previewOf(preview);
      if (!(await reportProgress(pool, hints, leaseOf(task, lease_token), stage, Math.round(progress), image))) {
        throw new ApiError('LEASE_LOST');
      }
      return { ok: true as const };
    },
  );

  app.post(
    '/v1/worker/tasks/:id/provider-ref',
    {
      schema: {
        summary: "Save the provider's request id, so a rescued attempt resumes it",
        tags,
        params: AttemptParams,
        body: ProviderRefBody,
        response: { 200: DoneAnswer, ...problems },
      },
    },
    async (request) => {
      const { lease_token, provider_ref } = request.body;
      const task = await held(request.params.id, lease_token);
      if (!(await saveProviderRef(pool, leaseOf(task, lease_token), provider_ref))) throw new ApiError('LEASE_LOST');
      return { ok: true as const };
    },
  );

  app.put(
    '/v1/worker/tasks/:id/images/:index',
    {
      schema: {
        summary: 'Upload one image of the attempt (the body is the image bytes)',
        description:
          'Stored under a key that carries the lease token, so a late upload can never replace the images of the attempt that won. With a stale lease nothing is kept (409 `LEASE_LOST`). Recorded only by the outcome call.',
        tags,
        params: ImageParams,
        querystring: UploadQuery,
        response: { 200: UploadAnswer, ...problems, 413: ProblemSchema, 415: ProblemSchema },
      },
    },
    async (request) => {
      const { id } = request.params;
      const index = Number(request.params.index);
      const token = request.query.lease_token;
      const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (!IMAGE_TYPES.includes(contentType))
        throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'the body must be a PNG, JPEG or WebP image');
      await held(id, token);
      const key = attemptImageKey(id, token, index, contentType);
      const hash = createHash('sha256');
      let bytes = 0;
      const counted = (request.body as Readable).pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            bytes += chunk.length;
            if (bytes > UPLOAD_MAX_BYTES) return callback(new ApiError('BODY_TOO_LARGE'));
            hash.update(chunk);
            callback(null, chunk);
          },
        }),
      );
      (request.body as Readable).once('error', (error) => counted.destroy(error));
      await storage.put(key, counted, contentType);
      // The lease may have gone while the bytes arrived: then nothing will ever record them.
      if (!(await taskUnderLease(pool, id, token))) {
        await deleteImages(storage, [key], logOf(request));
        throw new ApiError('LEASE_LOST');
      }
      return { storage_key: key, bytes, sha256: hash.digest('hex') };
    },
  );

  app.post(
    '/v1/worker/tasks/:id/succeed',
    {
      schema: {
        summary: 'Finish the attempt with its uploaded images',
        description:
          'Records the images and settles the credits in one fenced write, exactly as a local worker does. Repeating a call whose answer was lost is safe: it answers 200 again.',
        tags,
        params: AttemptParams,
        body: SucceedBody,
        response: { 200: DoneAnswer, ...problems },
      },
    },
    async (request) => {
      const { lease_token, predict_time_seconds, images } = request.body;
      const taskId = request.params.id;
      const keys = images.map((image) => attemptImageKey(taskId, lease_token, image.index, image.content_type));
      const task = await taskUnderLease(pool, taskId, lease_token);
      if (!task) {
        // A repeat of a success that won (its answer lost) is fine; anything else changed nothing.
        if ((await recordedImageKeys(pool, taskId, keys)).size > 0) return { ok: true as const };
        await deleteImages(storage, keys, logOf(request));
        throw new ApiError('LEASE_LOST');
      }
      const uploads = await Promise.all(images.map((image, i) => readUpload(storage, keys[i]!, image)));
      const log = logOf(request).child({ task: task.id, provider: task.provider, attempt: task.attempt });
      const lease = leaseOf(task, lease_token);
      // Converted, cleaned and thumbnailed here, once, exactly as a local worker does it
      // (src/images/finish-image.ts): the task's output settings and this server's config apply.
      const stored = await storeImages({ storage, output: options.output }, task, lease, uploads, log);
      const finished = new Set(stored.map((image) => image.storage_key));
      await deleteImages(
        storage,
        keys.filter((key) => !finished.has(key)),
        log,
      );
      if (!(await recordSuccess(outcomeDeps, task, lease, log, stored, predict_time_seconds))) {
        throw new ApiError('LEASE_LOST');
      }
      return { ok: true as const };
    },
  );

  app.post(
    '/v1/worker/tasks/:id/fail',
    {
      schema: {
        summary: 'Finish the attempt without a result: failed, canceled, timed out, or handed back',
        description:
          'Decided exactly as for a local worker: a retryable or rate-limited error is retried with backoff (or moves a routed task on), a permanent one fails the task, `aborted: "shutdown"` hands the task back uncounted, `aborted: "cancel"` ends it canceled.',
        tags,
        params: AttemptParams,
        body: FailBody,
        response: { 200: DoneAnswer, ...problems },
      },
    },
    async (request) => {
      const body = request.body;
      const task = await held(request.params.id, body.lease_token);
      const lease = leaseOf(task, body.lease_token);
      const log = logOf(request).child({ task: task.id, provider: task.provider, attempt: task.attempt });
      const won = await recordFailure(
        outcomeDeps,
        task,
        lease,
        log,
        {
          why: body.aborted,
          failure: {
            errorClass: body.error_class,
            error: body.error,
            ...(body.retry_after_ms !== undefined ? { retryAfterMs: body.retry_after_ms } : {}),
          },
        },
        body.predict_time_seconds,
      );
      // Images this attempt uploaded before it failed will never be recorded.
      await deleteAttemptUploads(storage, task.id, body.lease_token, logOf(request));
      if (!won) throw new ApiError('LEASE_LOST');
      return { ok: true as const };
    },
  );
};

/** An uploaded image as the provider made it, checked to be a readable image. */
async function readUpload(
  storage: Storage,
  key: string,
  image: { index: number; content_type: string; seed: number },
): Promise<GeneratedImage> {
  const data = await readStoredBytes(storage, key);
  if (!data) throw new ApiError('WORKER_IMAGE_MISSING', `image ${image.index} was not uploaded under this lease`);
  let metadata;
  try {
    metadata = await sharp(data).metadata();
  } catch {
    throw new ApiError('WORKER_IMAGE_MISSING', `image ${image.index} is not a readable image`);
  }
  return {
    data,
    contentType: image.content_type,
    width: metadata.width ?? 0,
    height: metadata.height ?? 0,
    seed: image.seed,
  };
}

async function deleteAttemptUploads(
  storage: Storage,
  taskId: string,
  leaseToken: string,
  log: Parameters<typeof deleteImages>[2],
): Promise<void> {
  try {
    const keys: string[] = [];
    for await (const object of storage.list(attemptImagePrefix(taskId, leaseToken))) keys.push(object.key);
    await deleteImages(storage, keys, log);
  } catch (error) {
    log.warn({ err: error }, 'could not list the uploads of a failed remote attempt');
  }
}

/**
 * A remote worker's preview, stored like a local worker's (migration 0018). The remote worker
 * throttles and size-caps previews with the same reporter a local worker uses; the body limit
 * bounds what a misbehaving one can send.
 */
function previewOf(preview: PreviewBody): PreviewImage {
  const data = Buffer.from(preview.data_base64, 'base64');
  if (data.length === 0) throw new ApiError('VALIDATION_FAILED', 'preview.data_base64 is empty or not base64');
  return { contentType: preview.content_type, data };
}
