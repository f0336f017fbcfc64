import type { OutputConfig } from '../../config/output.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { providerConcurrency, type QueueConfig, type WorkerConfig } from '../../config/config.js';
import { Channels, type Listener } from '../../db/listener.js';
import type { Hints } from '../../db/notifier.js';
import type { Pool } from '../../db/pool.js';
import { ApiError } from '../../domain/errors.js';
import { readStoredBytes } from '../../inputs/read-stored.js';
import type { Storage } from '../../storage/storage.js';
import { workerTokenLive } from '../../auth/worker-tokens.js';
import { claimTasks } from '../../tasks/claim.js';
import { registerRemoteWorker, releaseUnheldLeases } from '../../tasks/remote-workers.js';
import { heartbeat } from '../../tasks/workers.js';
import type { TaskRow } from '../../tasks/rows.js';
import {
  ClaimAnswer,
  ClaimBody,
  HeartbeatAnswer,
  HeartbeatBody,
  RegisterAnswer,
  RegisterBody,
  type ClaimedTask,
} from '../schemas/worker.js';
import { ProblemSchema } from '../schemas/task.js';
import { startApiRescuer } from './worker-rescuer.js';
import { workerAttemptRoutes } from './worker-attempt.js';

export interface WorkerRoutesOptions {
  pool: Pool;
  hints: Hints;
  /** Wakes claim long polls on `task_ready`; without it they poll every `worker.pollIntervalMs`. */
  listener?: Listener | undefined;
  storage: Storage;
  queue: QueueConfig;
  worker: WorkerConfig;
  /** How uploaded images are finished (format, quality, metadata), as a local worker finishes them. */
  output: Pick<OutputConfig, 'quality' | 'embedMetadata'>;
  /** LICENSE_API_ENDPOINT is set: a remote success records its external charge, as a local one does. */
  externalBilling?: boolean;
}

/** The longest a claim long poll is held: short enough for proxies' idle timeouts. */
export const MAX_CLAIM_WAIT_SECONDS = 30;

const problems = { 400: ProblemSchema, 401: ProblemSchema, 409: ProblemSchema };

/**
 * The routes remote workers call with a worker token (src/api/auth.ts lets nothing else in):
 * register, claim (a long poll over the same claim a local worker makes), heartbeat, and the
 * fenced calls of one attempt (worker-attempt.ts). The database stays behind the API: a GPU box
 * outside needs only HTTPS to Easel.
 */
export const workerRoutes: FastifyPluginAsyncTypebox<WorkerRoutesOptions> = async (app, options) => {
  const { pool, hints, queue, worker: config } = options;
  const tags = ['workers'];
  // Remote workers cannot rescue each other's tasks (they have no database): while any are
  // connected, this API process runs the rescuer a local worker would.
  const rescuer = startApiRescuer({ pool, hints, config, log: app.log });
  app.addHook('onClose', async () => rescuer.stop());

  app.post(
    '/v1/worker/register',
    {
      schema: {
        summary: 'Register a remote worker process',
        description:
          'Say which providers this process serves and how many tasks it runs at once. Called once at start and again after the server forgot the worker.',
        tags,
        body: RegisterBody,
        response: { 200: RegisterAnswer, ...problems },
      },
    },
    async (request) => {
      const body = request.body;
      const outcome = await registerRemoteWorker(pool, {
        id: body.worker_id,
        tokenId: request.worker!.tokenId,
        host: body.host,
        concurrency: body.concurrency,
        providers: body.providers,
        version: body.version,
      });
      if (outcome === 'taken') throw new ApiError('VALIDATION_FAILED', 'worker_id is registered by another token');
      rescuer.touch();
      request.log.info(
        { worker: body.worker_id, token: request.worker!.label, providers: body.providers },
        'remote worker registered',
      );
      return {
        worker_id: body.worker_id,
        heartbeat_ms: config.heartbeatMs,
        dead_after_ms: config.deadAfterMs,
        max_wait_seconds: MAX_CLAIM_WAIT_SECONDS,
        task_timeout_ms: config.taskTimeoutMs,
      };
    },
  );

  app.post(
    '/v1/worker/heartbeat',
    {
      schema: {
        summary: 'Say a remote worker is alive; learn which of its leases were canceled or lost',
        tags,
        body: HeartbeatBody,
        response: { 200: HeartbeatAnswer, ...problems },
      },
    },
    async (request) => {
      const body = request.body;
      await claimWorkerId(pool, request.worker!.tokenId, body.worker_id, body.concurrency);
      rescuer.touch();
      const leases = body.leases.map((lease) => ({ taskId: lease.task_id, token: lease.lease_token }));
      await releaseUnheldLeases(pool, hints, body.worker_id, leases, config.heartbeatMs);
      return heartbeat(
        pool,
        { id: body.worker_id, concurrency: body.concurrency },
        body.leases.map((lease) => ({ taskId: lease.task_id, token: lease.lease_token })),
      );
    },
  );

  app.post(
    '/v1/worker/claim',
    {
      schema: {
        summary: 'Claim tasks of the given providers (long poll)',
        description:
          "Answers at once when a task is claimable, else waits up to `wait_seconds` (at most 30) for one. Each task comes with a lease token; every later call of its attempt presents it. Remote claims need no credential of the provider's pool: the worker brings its own backend.",
        tags,
        body: ClaimBody,
        response: { 200: ClaimAnswer, ...problems },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const tokenId = request.worker!.tokenId;
      await claimWorkerId(pool, tokenId, body.worker_id);
      rescuer.touch();
      const deadline = Date.now() + Math.min(body.wait_seconds, MAX_CLAIM_WAIT_SECONDS) * 1000;
      // A client that hung up gets nothing claimed for it: a lease nobody receives would hold
      // the task until the heartbeat hands it back (see tasks/remote-workers.ts).
      let gone = false;
      reply.raw.once('close', () => (gone = !reply.raw.writableFinished));
      const closing = () => gone || request.raw.socket?.destroyed === true;
      for (;;) {
        // A revocation stops a poll in progress before it claims, not only the next request.
        if (!(await workerTokenLive(pool, tokenId))) throw new ApiError('INVALID_WORKER_TOKEN');
        if (closing()) return { tasks: [] };
        const claimed: TaskRow[] = [];
        for (const provider of body.providers) {
          const want = body.want - claimed.length;
          if (want <= 0) break;
          claimed.push(
            ...(await claimTasks(pool, hints, {
              provider,
              workerId: body.worker_id,
              want,
              providerLimit: providerConcurrency(queue, provider),
              deadAfterMs: config.deadAfterMs,
              // No central credential: the remote worker runs the provider with its own.
              credentialPool: undefined,
            })),
          );
        }
        if (claimed.length > 0) return { tasks: await Promise.all(claimed.map((task) => toClaimed(task))) };
        const remaining = deadline - Date.now();
        if (remaining <= 0) return { tasks: [] };
        await taskReadyOrTimeout(options.listener, body.providers, Math.min(remaining, config.pollIntervalMs));
      }
    },
  );

  async function toClaimed(task: TaskRow): Promise<ClaimedTask> {
    let inputImage: ClaimedTask['input_image'] = null;
    if (task.input_image) {
      const data = await readStoredBytes(options.storage, task.input_image.storage_key);
      // Missing bytes: the worker's attempt fails as a local one would (an infrastructure fault).
      if (data) {
        const { content_type, width, height } = task.input_image;
        inputImage = { content_type, width, height, data_base64: data.toString('base64') };
      }
    }
    return {
      id: task.id,
      provider: task.provider,
      kind: task.kind,
      model: task.model,
      attempt: task.attempt,
      lease_token: task.lease_token!,
      provider_ref: task.provider_ref,
      params: task.params,
      provider_options: task.provider_options,
      input_image: inputImage,
      cancel_requested: task.cancel_requested_at !== null,
    };
  }

  await app.register(workerAttemptRoutes, {
    pool,
    hints,
    storage: options.storage,
    queue,
    worker: config,
    output: options.output,
    externalBilling: options.externalBilling ?? false,
  });
};

/**
 * The worker id must be this token's. A heartbeat (which knows the concurrency) re-registers a
 * worker the server pruned while it was away; a claim from an unknown worker must register first.
 */
async function claimWorkerId(pool: Pool, tokenId: string, workerId: string, concurrency?: number): Promise<void> {
  const { rows } = await pool.query<{ token_id: string | null }>('SELECT token_id FROM workers WHERE id = $1', [
    workerId,
  ]);
  if (rows.length === 0 && concurrency !== undefined) {
    const outcome = await registerRemoteWorker(pool, {
      id: workerId,
      tokenId,
      host: 'remote (re-registered by heartbeat)',
      concurrency,
      providers: [],
      version: '',
    });
    if (outcome === 'registered') return;
  }
  if (rows.length === 0) throw new ApiError('VALIDATION_FAILED', 'unknown worker_id: register first');
  if (rows[0]!.token_id !== tokenId)
    throw new ApiError('VALIDATION_FAILED', 'worker_id is registered by another token');
}

/** Resolve on a `task_ready` hint for one of `providers`, or after `ms`. */
function taskReadyOrTimeout(listener: Listener | undefined, providers: string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      listener?.off('notification', onNotification);
      resolve();
    };
    const onNotification = (channel: string, payload: string) => {
      if (channel === Channels.taskReady && providers.includes(payload)) done();
    };
    const timer = setTimeout(done, ms);
    listener?.on('notification', onNotification);
  });
}
