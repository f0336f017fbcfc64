import { uuidv7 } from 'uuidv7';
import type { Logger } from 'pino';
import { providerConcurrency, type QueueConfig, type WorkerConfig } from '../config/config.js';
import { Channels, type Listener } from '../db/listener.js';
import type { Hints } from '../db/notifier.js';
import type { Pool } from '../db/pool.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Storage } from '../storage/storage.js';
import { pruneExpiredEvents } from '../events/retention.js';
import { claimTasks } from '../tasks/claim.js';
import { pruneDeadWorkers, rescueLostTasks } from '../tasks/rescue.js';
import type { TaskRow } from '../tasks/rows.js';
import { heartbeat, registerWorker, unregisterWorker } from '../tasks/workers.js';
import { AttemptAborted, runAttempt } from './run-attempt.js';

export interface WorkerDeps {
  pool: Pool;
  hints: Hints;
  listener: Listener;
  registry: ProviderRegistry;
  storage: Storage;
  config: WorkerConfig;
  queue: QueueConfig;
  log: Logger;
}

interface RunningAttempt {
  controller: AbortController;
  done: Promise<void>;
}

/**
 * Claims tasks for the providers it has, runs them, and keeps itself and the queue healthy:
 * a heartbeat that also carries pending cancels, a rescuer for other workers' lost tasks, and
 * a slow poll in case a NOTIFY went missing. NOTIFY only says "look now"; the rows decide.
 */
export class Worker {
  readonly id = uuidv7();
  private readonly running = new Map<string, RunningAttempt>();
  /** Providers that may have claimable tasks (a NOTIFY, a poll tick, or a full last claim). */
  private readonly hinted = new Set<string>();
  private claiming = false;
  private claimAgain = false;
  private stopping = false;
  private lastHeartbeatOk = Date.now();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly log: Logger;

  constructor(private readonly deps: WorkerDeps) {
    this.log = deps.log.child({ worker: this.id });
  }

  get activeTasks(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    await registerWorker(this.deps.pool, { id: this.id, concurrency: this.deps.config.concurrency });
    this.deps.listener.on('notification', this.onNotification);
    this.deps.listener.on('reconnected', this.onPollTick);
    const { heartbeatMs, rescueIntervalMs, pollIntervalMs } = this.deps.config;
    this.every(heartbeatMs, () => this.beat());
    this.every(rescueIntervalMs, () => this.rescue());
    this.every(pollIntervalMs, this.onPollTick);
    this.log.info({ concurrency: this.deps.config.concurrency, providers: this.deps.registry.ids() }, 'worker started');
    this.onPollTick();
  }

  /**
   * Stop claiming, give running attempts `graceMs` to finish, then abort the rest and hand them
   * back to the queue (uncounted) so another worker picks them up at once.
   */
  async stop(graceMs = this.deps.config.shutdownGraceMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.deps.listener.off('notification', this.onNotification);
    this.deps.listener.off('reconnected', this.onPollTick);
    const all = () => Promise.allSettled([...this.running.values()].map((attempt) => attempt.done));
    if (this.running.size > 0) {
      this.log.info({ running: this.running.size, graceMs }, 'waiting for running tasks');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    for (const attempt of this.running.values()) attempt.controller.abort(new AttemptAborted('shutdown'));
    await all();
    await unregisterWorker(this.deps.pool, this.id).catch((error: unknown) =>
      this.log.warn({ err: error }, 'could not unregister worker'),
    );
    this.log.info('worker stopped');
  }

  private every(intervalMs: number, tick: () => unknown): void {
    // ±20% jitter keeps many workers from marching in step against the database.
    const schedule = () => {
      const timer = setTimeout(
        async () => {
          this.timers.delete(timer);
          await tick();
          if (!this.stopping) schedule();
        },
        intervalMs * (0.8 + 0.4 * Math.random()),
      );
      timer.unref();
      this.timers.add(timer);
    };
    schedule();
  }

  private readonly onNotification = (channel: string, payload: string): void => {
    if (channel === Channels.taskReady) {
      if (this.deps.registry.get(payload)) {
        this.hinted.add(payload);
        void this.claimPass();
      }
    } else if (channel === Channels.taskCancel) {
      this.running.get(payload)?.controller.abort(new AttemptAborted('cancel'));
    }
  };

  private readonly onPollTick = (): void => {
    for (const provider of this.deps.registry.ids()) this.hinted.add(provider);
    void this.claimPass();
  };

  /** Claim for hinted providers until slots are full or the queues are empty; passes never overlap. */
  private async claimPass(): Promise<void> {
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    try {
      do {
        this.claimAgain = false;
        for (const provider of [...this.hinted]) {
          const free = this.freeSlots();
          if (free <= 0) break;
          this.hinted.delete(provider);
          const tasks = await claimTasks(this.deps.pool, this.deps.hints, {
            provider,
            workerId: this.id,
            want: free,
            providerLimit: providerConcurrency(this.deps.queue, provider),
          });
          for (const task of tasks) this.startAttempt(task);
          if (tasks.length === free) {
            // There may be more; look again once a slot frees up.
            this.hinted.add(provider);
          }
        }
      } while (this.claimAgain && this.freeSlots() > 0 && this.hinted.size > 0);
    } catch (error) {
      this.log.warn({ err: error }, 'claim failed; the poll will try again');
    } finally {
      this.claiming = false;
    }
  }

  private freeSlots(): number {
    if (this.stopping) return 0;
    // A worker that cannot reach the database to heartbeat will soon be presumed dead;
    // starting new provider calls now would only waste them.
    if (Date.now() - this.lastHeartbeatOk > this.deps.config.deadAfterMs / 2) return 0;
    return this.deps.config.concurrency - this.running.size;
  }

  private startAttempt(task: TaskRow): void {
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(new AttemptAborted('timeout')), this.deps.config.taskTimeoutMs);
    if (task.cancel_requested_at) controller.abort(new AttemptAborted('cancel'));
    const done = runAttempt({ ...this.deps, log: this.log, progressIntervalMs: 500 }, task, controller.signal)
      .catch((error: unknown) => this.log.error({ err: error, task: task.id }, 'could not record attempt outcome'))
      .finally(() => {
        clearTimeout(timeout);
        this.running.delete(task.id);
        if (this.hinted.size > 0) void this.claimPass();
      });
    this.running.set(task.id, { controller, done });
  }

  private async beat(): Promise<void> {
    try {
      const cancels = await heartbeat(this.deps.pool, { id: this.id, concurrency: this.deps.config.concurrency });
      this.lastHeartbeatOk = Date.now();
      for (const taskId of cancels) this.running.get(taskId)?.controller.abort(new AttemptAborted('cancel'));
    } catch (error) {
      this.log.warn({ err: error }, 'heartbeat failed');
    }
  }

  private async rescue(): Promise<void> {
    try {
      const rescued = await rescueLostTasks(this.deps.pool, this.deps.hints, this.deps.config);
      if (rescued.length > 0) this.log.warn({ tasks: rescued }, 'rescued tasks from lost attempts');
      await pruneDeadWorkers(this.deps.pool, this.deps.config.deadAfterMs);
      await pruneExpiredEvents(this.deps.pool, { retentionHours: this.deps.config.eventRetentionHours });
    } catch (error) {
      this.log.warn({ err: error }, 'rescue pass failed');
    }
  }
}
