import { uuidv7 } from 'uuidv7';
import type { Logger } from 'pino';
import { providerConcurrency, type QueueConfig, type WorkerConfig } from '../config/config.js';
import { Channels, type Listener } from '../db/listener.js';
import type { Hints } from '../db/notifier.js';
import type { Pool } from '../db/pool.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Storage } from '../storage/storage.js';
import type { OutputConfig } from '../config/output.js';
import type { SecretBox } from '../credentials/secret-box.js';
import { pruneExpiredEvents } from '../events/retention.js';
import { claimTasks } from '../tasks/claim.js';
import { pruneDeadWorkers, rescueLostTasks } from '../tasks/rescue.js';
import { moveStrandedTasks } from '../routing/task-route.js';
import type { Lease, TaskRow } from '../tasks/rows.js';
import { heartbeat, registerWorker, unregisterWorker } from '../tasks/workers.js';
import { AttemptAborted } from '../providers/abort.js';
import { runAttempt } from './run-attempt.js';
import { settleBatch } from '../billing/external-charges.js';
import type { LicenseApi } from '../billing/license-api.js';
import type { RetentionConfig } from '../config/retention.js';
import { collectGarbage, gcSkipped } from '../retention/gc.js';

/** Charges one maintenance pass sends to the licence API, at once (each bounded by the timeout). */
const EXTERNAL_CHARGES_PER_PASS = 20;

export interface WorkerDeps {
  pool: Pool;
  hints: Hints;
  listener: Listener;
  registry: ProviderRegistry;
  storage: Storage;
  config: WorkerConfig;
  queue: QueueConfig;
  /** Quality for cleaning providers' JPEG/WebP, and EASEL_EMBED_METADATA (src/config/output.ts). */
  output: Pick<OutputConfig, 'quality' | 'embedMetadata'>;
  log: Logger;
  /** Opens pool credentials; undefined when no secret key is configured. */
  secrets: SecretBox | undefined;
  /** LICENSE_API_ENDPOINT: successes record external charges; the maintenance pass sends them. */
  licenseApi?: { api: LicenseApi; timeoutMs: number };
  /** Retention settings: with a gc interval, this worker runs gc when no other one is (docs/retention.md). */
  retention?: RetentionConfig;
}

interface RunningAttempt {
  controller: AbortController;
  lease: Lease;
  done: Promise<void>;
}

/** A tick that repeats on a fixed cadence; `stop` resolves once a tick in flight has finished. */
interface Loop {
  stop(): Promise<void>;
}

/**
 * Claims tasks for the providers it has, runs them, and keeps itself and the queue healthy:
 * a heartbeat that also carries pending cancels and lost leases, a rescuer for other workers'
 * lost tasks, and a slow poll in case a NOTIFY went missing. NOTIFY only says "look now"; the
 * rows decide.
 *
 * A database outage is ridden out: running attempts go on, finished ones keep their outcome
 * until it can be written, nothing new is claimed, and the heartbeat (which keeps the process
 * alive) tries again on its cadence. Only after `databaseGiveUpMs` without one successful
 * heartbeat does the worker give up (`gaveUp` resolves) so that its supervisor restarts it.
 */
export class Worker {
  readonly id = uuidv7();
  /** Resolves with the reason when the worker gives up on the database; never rejects. */
  readonly gaveUp: Promise<string>;
  private resolveGaveUp!: (reason: string) => void;
  private readonly running = new Map<string, RunningAttempt>();
  /** Providers that may have claimable tasks (a NOTIFY, a poll tick, or a full last claim). */
  private readonly hinted = new Set<string>();
  private claiming = false;
  private claimAgain = false;
  private stopping = false;
  private givenUp = false;
  private lastHeartbeatOk = Date.now();
  /** Aborted when outcomes still waiting for the database are no longer worth waiting for. */
  private readonly abandon = new AbortController();
  /** Stops a gc pass in flight at its next batch, so a long pass never holds up a shutdown. */
  private readonly stopGc = new AbortController();
  private heartbeatLoop: Loop | undefined;
  private claimLoops: Loop[] = [];
  private readonly log: Logger;

  constructor(private readonly deps: WorkerDeps) {
    this.log = deps.log.child({ worker: this.id });
    this.gaveUp = new Promise((resolve) => (this.resolveGaveUp = resolve));
  }

  get activeTasks(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    await registerWorker(this.deps.pool, { id: this.id, concurrency: this.deps.config.concurrency });
    this.lastHeartbeatOk = Date.now();
    this.deps.listener.on('notification', this.onNotification);
    this.deps.listener.on('reconnected', this.onPollTick);
    const { heartbeatMs, rescueIntervalMs, pollIntervalMs } = this.deps.config;
    // The heartbeat's timer is the one that keeps the process alive: with the database gone
    // there is no socket left to do it, and the worker must outlast the outage.
    this.heartbeatLoop = this.every(heartbeatMs, () => this.beat(), { holdsProcess: true });
    this.claimLoops = [this.every(rescueIntervalMs, () => this.rescue()), this.every(pollIntervalMs, this.onPollTick)];
    const gcIntervalMs = this.deps.retention?.gcIntervalMs ?? 0;
    if (gcIntervalMs > 0) this.claimLoops.push(this.every(gcIntervalMs, () => this.collectGarbage()));
    this.log.info({ concurrency: this.deps.config.concurrency, providers: this.deps.registry.ids() }, 'worker started');
    this.onPollTick();
  }

  /**
   * Stop claiming, give running attempts `graceMs` to finish, then abort the rest and hand them
   * back to the queue (uncounted) so another worker picks them up at once. The heartbeat goes on
   * until the end: a draining worker must not look dead to its peers' rescuers.
   */
  async stop(graceMs = this.givenUp ? 0 : this.deps.config.shutdownGraceMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.deps.listener.off('reconnected', this.onPollTick);
    this.stopGc.abort();
    await Promise.all(this.claimLoops.map((loop) => loop.stop()));
    const all = () => Promise.allSettled([...this.running.values()].map((attempt) => attempt.done));
    if (this.running.size > 0) {
      this.log.info({ running: this.running.size, graceMs }, 'waiting for running tasks');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    for (const attempt of this.running.values()) attempt.controller.abort(new AttemptAborted('shutdown'));
    // Hand-backs get one try; outcomes still waiting for the database stop waiting.
    this.abandon.abort();
    await all();
    await this.heartbeatLoop?.stop();
    this.deps.listener.off('notification', this.onNotification);
    await unregisterWorker(this.deps.pool, this.id).catch((error: unknown) =>
      this.log.warn({ err: error }, 'could not unregister worker'),
    );
    this.log.info('worker stopped');
  }

  /**
   * Run `tick` every `intervalMs` (±20% jitter keeps many workers from marching in step against
   * the database). The cadence does not wait for a slow tick, and a tick still in flight when
   * the next is due is not doubled: that one is skipped.
   */
  private every(intervalMs: number, tick: () => unknown, options: { holdsProcess?: boolean } = {}): Loop {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let inFlight: Promise<void> | undefined;
    const schedule = () => {
      timer = setTimeout(
        () => {
          if (stopped) return;
          schedule();
          if (inFlight) return;
          inFlight = Promise.resolve()
            .then(tick)
            .then(
              () => undefined,
              (error: unknown) => this.log.error({ err: error }, 'worker tick failed'),
            )
            .finally(() => (inFlight = undefined));
        },
        intervalMs * (0.8 + 0.4 * Math.random()),
      );
      if (!options.holdsProcess) timer.unref();
    };
    schedule();
    return {
      async stop() {
        stopped = true;
        clearTimeout(timer);
        await inFlight;
      },
    };
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
            deadAfterMs: this.deps.config.deadAfterMs,
            credentialPool: this.deps.registry.get(provider)?.credentialPool,
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
    const lease: Lease = { taskId: task.id, token: task.lease_token!, provider: task.provider };
    const timeout = setTimeout(() => controller.abort(new AttemptAborted('timeout')), this.deps.config.taskTimeoutMs);
    if (task.cancel_requested_at) controller.abort(new AttemptAborted('cancel'));
    const deps = {
      ...this.deps,
      log: this.log,
      progressIntervalMs: 500,
      abandon: this.abandon.signal,
      credentialCooldownMs: this.deps.config.credentialCooldownMs,
      previews: this.deps.config.previews,
      externalBilling: this.deps.licenseApi !== undefined,
    };
    // The slot stays taken until the outcome is written, however long the database is away.
    const done = runAttempt(deps, task, controller)
      .catch((error: unknown) => this.log.error({ err: error, task: task.id }, 'could not record attempt outcome'))
      .finally(() => {
        clearTimeout(timeout);
        this.running.delete(task.id);
        if (this.hinted.size > 0) void this.claimPass();
      });
    this.running.set(task.id, { controller, lease, done });
  }

  private async beat(): Promise<void> {
    const { config } = this.deps;
    const leases = [...this.running.values()].map((attempt) => attempt.lease);
    // Long enough for a loaded database, short enough that the worker is not presumed dead
    // while one round trip hangs on a silent connection.
    const timeoutMs = Math.min(Math.max(config.heartbeatMs, 2_000), config.deadAfterMs / 2);
    try {
      const answer = await heartbeat(this.deps.pool, { id: this.id, concurrency: config.concurrency }, leases, {
        timeoutMs,
      });
      this.lastHeartbeatOk = Date.now();
      for (const taskId of answer.cancel) this.running.get(taskId)?.controller.abort(new AttemptAborted('cancel'));
      for (const taskId of answer.lost) this.running.get(taskId)?.controller.abort(new AttemptAborted('lease_lost'));
    } catch (error) {
      const downForMs = Date.now() - this.lastHeartbeatOk;
      this.log.warn({ err: error, downForMs }, 'heartbeat failed');
      if (downForMs > config.databaseGiveUpMs) this.giveUp(downForMs);
    }
  }

  private giveUp(downForMs: number): void {
    if (this.givenUp) return;
    this.givenUp = true;
    const reason = `the database has been unreachable for ${Math.round(downForMs / 1000)} s, longer than EASEL_DATABASE_GIVE_UP_MS (${this.deps.config.databaseGiveUpMs} ms); giving up`;
    this.log.error({ downForMs, running: this.running.size }, reason);
    this.resolveGaveUp(reason);
  }

  /** Providers of this worker that draw on a credential pool, with the pool. */
  private credentialPools(): Array<{ provider: string; pool: string }> {
    return this.deps.registry
      .list()
      .flatMap((provider) =>
        provider.credentialPool ? [{ provider: provider.id, pool: provider.credentialPool }] : [],
      );
  }

  private async rescue(): Promise<void> {
    try {
      const rescued = await rescueLostTasks(this.deps.pool, this.deps.hints, this.deps.config);
      if (rescued.length > 0) this.log.warn({ tasks: rescued }, 'rescued tasks from lost attempts');
      const moved = await moveStrandedTasks(this.deps.pool, this.deps.hints, this.credentialPools());
      if (moved > 0)
        this.log.warn({ tasks: moved }, "moved routed tasks on: their target's credentials stayed unusable");
      await pruneDeadWorkers(this.deps.pool, this.deps.config.deadAfterMs);
      await pruneExpiredEvents(this.deps.pool, { retentionHours: this.deps.config.eventRetentionHours });
    } catch (error) {
      this.log.warn({ err: error }, 'rescue pass failed');
    }
    await this.settleExternalCharges();
  }

  /**
   * Retention and orphan sweep. Every worker ticks, but the advisory lock lets one run at a time;
   * the others skip. Slow (it lists storage), so it has a loop of its own and never delays a
   * rescue.
   */
  private async collectGarbage(): Promise<void> {
    const retention = this.deps.retention!;
    const log = this.log.child({ component: 'gc' });
    try {
      const outcome = await collectGarbage(this.deps.pool, this.deps.storage, {
        retention,
        signal: this.stopGc.signal,
        onStorageError: (key, error) => log.warn({ err: error, key }, 'gc could not delete an object; it stays queued'),
      });
      if (gcSkipped(outcome)) return log.debug(outcome.skipped);
      const { sample: _sample, ...counts } = outcome;
      log.info(counts, 'gc pass done');
    } catch (error) {
      if (this.stopGc.signal.aborted) return log.info('gc pass stopped for shutdown; the next one resumes');
      log.warn({ err: error }, 'gc pass failed; the next one finishes what it queued');
    }
  }

  /**
   * One bounded batch of external charges per pass. Its own try: the licence API being away
   * must not stop the rescue above, and vice versa. Charges that fail stay pending (backoff).
   */
  private async settleExternalCharges(): Promise<void> {
    const { licenseApi } = this.deps;
    if (!licenseApi) return;
    try {
      const counts = await settleBatch(this.deps.pool, licenseApi.api, {
        limit: EXTERNAL_CHARGES_PER_PASS,
        timeoutMs: licenseApi.timeoutMs,
      });
      if (counts.retrying + counts.failed > 0) {
        this.log.warn(counts, 'licence API: some charges were not settled (see GET /v1/admin/billing/unreconciled)');
      }
    } catch (error) {
      this.log.warn({ err: error }, 'settling external charges failed');
    }
  }
}
