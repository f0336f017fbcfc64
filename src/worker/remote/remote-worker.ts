import type { PreviewLimits } from '../../config/previews.js';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { uuidv7 } from 'uuidv7';
import type { ClaimAnswer, HeartbeatAnswer, RegisterAnswer } from '../../api/schemas/worker.js';
import { AttemptAborted } from '../../providers/abort.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { Lease } from '../../tasks/rows.js';
import { runAttemptWith, type AttemptQueue } from '../run-attempt.js';
import { WorkerApiClient, WorkerTokenRefused } from './client.js';
import { httpQueue, type RemoteTask } from './http-queue.js';
import type { LocalCredentials } from './local-credentials.js';

export interface RemoteWorkerOptions {
  url: string;
  token: string;
  registry: ProviderRegistry;
  /** Providers to serve: each runnable here (no pool, or a local credential of its pool). */
  providers: string[];
  credentials: LocalCredentials;
  concurrency: number;
  taskTimeoutMs: number;
  shutdownGraceMs: number;
  /** How often and how large progress previews may be sent (EASEL_PREVIEW_*). */
  previews: PreviewLimits;
  version: string;
  log: Logger;
}

interface Running {
  controller: AbortController;
  lease: Lease;
  done: Promise<void>;
}

/**
 * A worker on a machine that reaches Easel only over HTTP (`easel worker --remote`). It runs the
 * same attempt logic as a local worker against the worker API instead of the database: register,
 * claim by long poll, heartbeat with the leases it holds (the answer says which were canceled or
 * lost), report, upload, finish. An unreachable API is ridden out (calls retry with backoff;
 * running attempts go on). A refused token ends the worker: `finished` resolves with the reason.
 */
export class RemoteWorker {
  readonly id = uuidv7();
  /** Resolves when the worker has stopped by itself: the reason, for the exit message. */
  readonly finished: Promise<string>;
  private resolveFinished!: (reason: string) => void;
  private readonly running = new Map<string, Running>();
  private readonly abandon = new AbortController();
  private readonly stopClaiming = new AbortController();
  private readonly client: WorkerApiClient;
  private readonly queue: AttemptQueue<RemoteTask>;
  private readonly log: Logger;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private claimLoop: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private stopping = false;
  private server: RegisterAnswer | undefined;

  constructor(private readonly options: RemoteWorkerOptions) {
    this.log = options.log.child({ worker: this.id });
    this.client = new WorkerApiClient(options.url.replace(/\/+$/, ''), options.token, this.log, this.abandon.signal);
    this.queue = httpQueue(this.client, options.credentials, this.log, (taskId) =>
      this.running.get(taskId)?.controller.abort(new AttemptAborted('lease_lost')),
    );
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  async start(): Promise<void> {
    this.server = await this.client.json<RegisterAnswer>('/v1/worker/register', {
      worker_id: this.id,
      providers: this.options.providers,
      concurrency: this.options.concurrency,
      version: this.options.version,
      host: os.hostname(),
    });
    this.scheduleHeartbeat();
    this.claimLoop = this.claimUntilStopped();
    this.log.info(
      { url: this.options.url, providers: this.options.providers, concurrency: this.options.concurrency },
      'remote worker started',
    );
  }

  /** Stop claiming, give running attempts the grace period, then hand the rest back (uncounted). */
  async stop(graceMs = this.options.shutdownGraceMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stopClaiming.abort();
    this.slotFreed?.();
    await this.claimLoop;
    const all = () => Promise.allSettled([...this.running.values()].map((attempt) => attempt.done));
    if (this.running.size > 0) {
      this.log.info({ running: this.running.size, graceMs }, 'waiting for running tasks');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    for (const attempt of this.running.values()) attempt.controller.abort(new AttemptAborted('shutdown'));
    // Hand-backs get their tries while the heartbeat goes on; then nothing more is waited for.
    const handedBack = all();
    await Promise.race([handedBack, sleep(graceMs)]);
    this.abandon.abort();
    await handedBack;
    clearTimeout(this.heartbeatTimer);
    this.log.info('remote worker stopped');
  }

  /** The token was refused: nothing can be written any more, so attempts stop without a word. */
  private fatal(error: WorkerTokenRefused): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log.error({ code: error.code }, error.message);
    this.stopClaiming.abort();
    this.slotFreed?.();
    for (const attempt of this.running.values()) attempt.controller.abort(new AttemptAborted('lease_lost'));
    this.abandon.abort();
    clearTimeout(this.heartbeatTimer);
    void Promise.allSettled([this.claimLoop, ...[...this.running.values()].map((a) => a.done)]).then(() =>
      this.resolveFinished(error.message),
    );
  }

  private async claimUntilStopped(): Promise<void> {
    const signal = this.stopClaiming.signal;
    const wait = this.server!.max_wait_seconds;
    while (!signal.aborted) {
      const free = this.options.concurrency - this.running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        this.slotFreed = undefined;
        continue;
      }
      try {
        const answer = await this.client.json<ClaimAnswer>(
          '/v1/worker/claim',
          { worker_id: this.id, providers: this.options.providers, want: free, wait_seconds: wait },
          { signal, timeoutMs: (wait + 15) * 1000 },
        );
        for (const task of answer.tasks) this.startAttempt(task);
      } catch (error) {
        if (error instanceof WorkerTokenRefused) return this.fatal(error);
        if (signal.aborted) return;
        // Retries are inside the client; what reaches here is a refusal a retry will not fix soon.
        this.log.error({ err: error }, 'claim failed');
        await sleep(5_000, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  private startAttempt(task: RemoteTask): void {
    const controller = new AbortController();
    const lease: Lease = { taskId: task.id, token: task.lease_token, provider: task.provider };
    // Never past the server's limit: its rescuer takes an attempt over a dead-after later.
    const timeoutMs = Math.min(this.options.taskTimeoutMs, this.server!.task_timeout_ms);
    const timeout = setTimeout(() => controller.abort(new AttemptAborted('timeout')), timeoutMs);
    if (task.cancel_requested) controller.abort(new AttemptAborted('cancel'));
    const deps = {
      registry: this.options.registry,
      log: this.log,
      progressIntervalMs: 500,
      previews: this.options.previews,
    };
    const done = runAttemptWith(this.queue, deps, task, controller)
      .catch((error: unknown) => {
        if (error instanceof WorkerTokenRefused) return this.fatal(error);
        this.log.error({ err: error, task: task.id }, 'could not report attempt outcome');
      })
      .finally(() => {
        clearTimeout(timeout);
        this.running.delete(task.id);
        this.slotFreed?.();
      });
    this.running.set(task.id, { controller, lease, done });
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = setTimeout(
      () => {
        void this.beat().finally(() => {
          if (!this.abandon.signal.aborted) this.scheduleHeartbeat();
        });
      },
      this.server!.heartbeat_ms * (0.8 + 0.4 * Math.random()),
    );
  }

  private async beat(): Promise<void> {
    const leases = [...this.running.values()].map(({ lease }) => ({ task_id: lease.taskId, lease_token: lease.token }));
    try {
      const answer = await this.client.json<HeartbeatAnswer>(
        '/v1/worker/heartbeat',
        { worker_id: this.id, concurrency: this.options.concurrency, leases },
        // One try per beat: the next beat is the retry, and a stale beat is worth nothing.
        { retry: false, timeoutMs: Math.max(this.server!.heartbeat_ms, 2_000) },
      );
      for (const taskId of answer.cancel) this.running.get(taskId)?.controller.abort(new AttemptAborted('cancel'));
      for (const taskId of answer.lost) this.running.get(taskId)?.controller.abort(new AttemptAborted('lease_lost'));
    } catch (error) {
      if (error instanceof WorkerTokenRefused) return this.fatal(error);
      this.log.warn({ err: error }, 'heartbeat failed');
    }
  }
}
