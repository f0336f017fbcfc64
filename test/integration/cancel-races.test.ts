import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTasks } from '../../src/tasks/claim.js';
import {
  cancelAttempt,
  failAttempt,
  releaseAttempt,
  retryAttemptLater,
  succeedAttempt,
} from '../../src/tasks/attempt.js';
import { cancelTask, type CancelOutcome } from '../../src/tasks/cancel.js';
import { requeueTask } from '../../src/tasks/requeue.js';
import type { TaskRow } from '../../src/tasks/rows.js';
import { createPool, type Pool } from '../../src/db/pool.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { addWorker, enqueueTask } from '../helpers/queue.js';

const PROVIDER = 'racy';
const TASKS = 120;
/** Every FINISHER_EVERY-th task succeeds on its third attempt; the others retry forever unless canceled. */
const FINISHER_EVERY = 6;

/**
 * Cancels fired at random moments from several connections while simulated workers claim,
 * retry and release the same tasks on other connections, as fast as the database lets them.
 */
describe('cancel racing claims, retries and releases', () => {
  let workerPool: Pool;
  let cancelPool: Pool;
  let userId: string;
  beforeAll(async () => {
    const url = await createTestDatabase();
    workerPool = createPool(url, { max: 4 });
    cancelPool = createPool(url, { max: 4 });
    userId = await createUser(workerPool, 'racer');
  });
  afterAll(async () => {
    await workerPool?.end();
    await cancelPool?.end();
  });

  /** Runs claimed attempts like a worker would, with no provider: each ends in a retry, a release or a success. */
  async function simulateWorker(finishers: Set<string>, until: () => boolean): Promise<void> {
    const workerId = randomUUID();
    await addWorker(workerPool, workerId);
    const runOne = async (task: TaskRow) => {
      const lease = { taskId: task.id, token: task.lease_token!, provider: PROVIDER };
      // A claim that sees the cancel already requested aborts at once, as the real worker does.
      if (task.cancel_requested_at) return cancelAttempt(workerPool, NO_HINTS, lease, 0);
      await sleep(Math.random() * 3);
      if (finishers.has(task.id) && task.attempt >= 3) {
        return succeedAttempt(workerPool, NO_HINTS, lease, { predictTimeSeconds: 0, images: [] });
      }
      if (Math.random() < 0.2) return releaseAttempt(workerPool, NO_HINTS, lease);
      const error = { code: 'PROVIDER_UNAVAILABLE', message: 'try again' };
      return retryAttemptLater(workerPool, NO_HINTS, lease, error, Math.random() * 3, 0, { keepProviderRef: false });
    };
    while (!until()) {
      const claimed = await claimTasks(workerPool, NO_HINTS, {
        provider: PROVIDER,
        workerId,
        want: 3,
        providerLimit: 1000,
        deadAfterMs: 30_000,
      });
      if (claimed.length === 0) await sleep(1);
      await Promise.all(claimed.map(runOne));
    }
  }

  it('lets every cancel of an unfinished task take effect, and nothing brings the task back', async () => {
    const tasks: TaskRow[] = [];
    for (let i = 0; i < TASKS; i++) tasks.push(await enqueueTask(workerPool, { userId, provider: PROVIDER }));
    const finishers = new Set(tasks.filter((_, i) => i % FINISHER_EVERY === 0).map((task) => task.id));

    let stop = false;
    const workers = Promise.all(Array.from({ length: 3 }, () => simulateWorker(finishers, () => stop)));
    const outcomes = new Map<string, CancelOutcome>();
    const cancels = Promise.all(
      tasks.map(async (task) => {
        await sleep(20 + Math.random() * 1500);
        outcomes.set(task.id, await cancelTask(cancelPool, NO_HINTS, userId, task.id));
      }),
    );
    try {
      await cancels;
      // Give the workers time to wind down every attempt whose cancel was requested.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const { rows } = await cancelPool.query(
          `SELECT count(*)::int AS n FROM tasks WHERE provider = $1 AND status IN ('queued', 'running')`,
          [PROVIDER],
        );
        if (rows[0].n === 0) break;
        await sleep(50);
      }
    } finally {
      stop = true;
      await workers;
    }

    const { rows: finals } = await cancelPool.query<{ id: string; status: string; types: string[] }>(
      `SELECT t.id, t.status, array_agg(e.type ORDER BY e.id) AS types
       FROM tasks t JOIN task_events e ON e.task_id = t.id WHERE t.provider = $1 GROUP BY t.id, t.status`,
      [PROVIDER],
    );
    const problems: unknown[] = [];
    for (const task of finals) {
      const outcome = outcomes.get(task.id);
      const finisher = finishers.has(task.id);
      // Only a task whose result was recorded may refuse a cancel, and only a recorded result beats one.
      const expected = finisher ? ['canceled', 'succeeded'] : ['canceled'];
      const answeredOk = outcome === 'canceled' || outcome === 'cancel_requested';
      const refusedOk = finisher && outcome === 'already_finished' && task.status === 'succeeded';
      if (!(answeredOk || refusedOk) || !expected.includes(task.status)) {
        problems.push({ id: task.id, finisher, outcome, status: task.status, events: task.types.slice(-6) });
        continue;
      }
      // Once a cancel was recorded, the task never went back to the queue or ran again.
      const firstCancel = task.types.findIndex((type) => type === 'task:cancel_requested' || type === 'task:canceled');
      const after = firstCancel < 0 ? [] : task.types.slice(firstCancel + 1);
      if (after.some((type) => ['task:queued', 'task:retrying', 'task:running'].includes(type))) {
        problems.push({ id: task.id, outcome, status: task.status, afterCancel: after });
      }
    }
    expect(finals).toHaveLength(TASKS);
    expect(problems).toEqual([]);
  }, 60_000);

  it("lets a retry (requeue) race a cancel and the failed attempt's late write, and answers agree with the end state", async () => {
    const provider = 'requeue-race';
    const workerId = randomUUID();
    await addWorker(workerPool, workerId);
    const tasks: TaskRow[] = [];
    for (let i = 0; i < 40; i++) tasks.push(await enqueueTask(workerPool, { userId, provider }));
    const claimed = await claimTasks(workerPool, NO_HINTS, {
      provider,
      workerId,
      want: tasks.length,
      providerLimit: 1000,
      deadAfterMs: 30_000,
    });
    const leases = claimed.map((task) => ({ taskId: task.id, token: task.lease_token!, provider }));
    for (const lease of leases) {
      expect(await failAttempt(workerPool, NO_HINTS, lease, { code: 'X', message: 'failed' }, 0)).toBe(true);
    }

    const results = await Promise.all(
      leases.map(async (lease) => {
        const [requeued, canceled, lateWrite] = await Promise.all([
          sleep(Math.random() * 5).then(() => requeueTask(workerPool, NO_HINTS, userId, lease.taskId)),
          sleep(Math.random() * 5).then(() => cancelTask(cancelPool, NO_HINTS, userId, lease.taskId)),
          sleep(Math.random() * 5).then(() =>
            succeedAttempt(cancelPool, NO_HINTS, lease, { predictTimeSeconds: 0, images: [] }),
          ),
        ]);
        const { rows } = await cancelPool.query('SELECT status FROM tasks WHERE id = $1', [lease.taskId]);
        return { id: lease.taskId, requeued: requeued !== undefined, canceled, lateWrite, status: rows[0].status };
      }),
    );
    // The retry always wins over a failed task; the cancel either came first (and found it
    // finished) or came after and canceled the queued retry; the dead attempt never writes.
    const wrong = results.filter(
      (r) =>
        !r.requeued ||
        r.lateWrite ||
        !(
          (r.canceled === 'already_finished' && r.status === 'queued') ||
          (r.canceled === 'canceled' && r.status === 'canceled')
        ),
    );
    expect(wrong).toEqual([]);
  });
});
