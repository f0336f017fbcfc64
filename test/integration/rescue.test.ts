import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTasks } from '../../src/tasks/claim.js';
import { pruneDeadWorkers, rescueLostTasks } from '../../src/tasks/rescue.js';
import type { Pool } from '../../src/db/pool.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { createTestDatabase, createTestPool, createUser } from '../helpers/database.js';
import { addWorker, enqueueTask, waitForServerUptime } from '../helpers/queue.js';

/**
 * The rescuer's decisions, at the SQL level. The rescuer is global (it looks at every running
 * task), so each test follows only its own tasks and workers.
 */
describe('rescuing lost attempts', () => {
  let pool: Pool;
  let userId: string;
  beforeAll(async () => {
    pool = await createTestPool(await createTestDatabase());
    userId = await createUser(pool, 'rescue');
  });
  afterAll(async () => {
    await pool?.end();
  });

  /** A running task of a fresh worker; returns both ids. */
  const runningTask = async (provider: string) => {
    const workerId = randomUUID();
    await addWorker(pool, workerId);
    const task = await enqueueTask(pool, { userId, provider });
    const [claimed] = await claimTasks(pool, NO_HINTS, {
      provider,
      workerId,
      want: 1,
      providerLimit: 10,
      deadAfterMs: 30_000,
    });
    expect(claimed?.id).toBe(task.id);
    return { taskId: task.id, workerId };
  };
  const serverUptimeMs = async () =>
    Number(
      (await pool.query<{ ms: number }>(`SELECT extract(epoch FROM now() - pg_postmaster_start_time()) * 1000 AS ms`))
        .rows[0]!.ms,
    );
  const taskState = async (taskId: string) =>
    (await pool.query('SELECT status, error FROM tasks WHERE id = $1', [taskId])).rows[0];

  it("lets a live worker's own timeout act first: the hard timeout is the task timeout plus dead-after", async () => {
    const { taskId, workerId } = await runningTask('timeout');
    const limits = { deadAfterMs: 30_000, taskTimeoutMs: 1000 };
    // Past the task timeout, but within the margin: the worker's own abort and fenced write come first.
    await pool.query(`UPDATE tasks SET started_at = now() - interval '2 seconds' WHERE id = $1`, [taskId]);
    expect((await rescueLostTasks(pool, NO_HINTS, limits)).map((row) => row.id)).not.toContain(taskId);
    expect((await taskState(taskId)).status).toBe('running');

    // Past the margin too: the worker is alive but its attempt is stuck, so the rescuer takes it.
    await pool.query(`UPDATE tasks SET started_at = now() - interval '32 seconds' WHERE id = $1`, [taskId]);
    await addWorker(pool, workerId);
    expect((await rescueLostTasks(pool, NO_HINTS, limits)).map((row) => row.id)).toContain(taskId);
    expect(await taskState(taskId)).toMatchObject({ status: 'queued', error: { code: 'ATTEMPT_TIMED_OUT' } });
  });

  it('counts silence only since the database server started, so a restart declares no live worker dead', async () => {
    const { taskId, workerId } = await runningTask('restart');
    // The last heartbeat predates the server's start, as every heartbeat does right after a restart.
    await pool.query(`UPDATE workers SET last_seen_at = pg_postmaster_start_time() - interval '1 hour' WHERE id = $1`, [
      workerId,
    ]);
    // Up for less than dead-after: the worker has had no chance to heartbeat yet; not lost.
    const sinceStart = await serverUptimeMs();
    const young = { deadAfterMs: sinceStart + 60_000, taskTimeoutMs: 3_600_000 };
    expect((await rescueLostTasks(pool, NO_HINTS, young)).map((row) => row.id)).not.toContain(taskId);
    expect((await taskState(taskId)).status).toBe('running');

    // Silent for longer than dead-after since the start: truly lost, and rescued.
    await waitForServerUptime(pool, 1000);
    const old = { deadAfterMs: Math.floor((await serverUptimeMs()) / 2), taskTimeoutMs: 3_600_000 };
    expect((await rescueLostTasks(pool, NO_HINTS, old)).map((row) => row.id)).toContain(taskId);
    expect(await taskState(taskId)).toMatchObject({ status: 'queued', error: { code: 'WORKER_LOST' } });
  });

  it('still rescues at once the task of a worker that has no row any more', async () => {
    const { taskId, workerId } = await runningTask('vanished');
    await pool.query('DELETE FROM workers WHERE id = $1', [workerId]);
    const limits = { deadAfterMs: 3_600_000, taskTimeoutMs: 3_600_000 };
    expect((await rescueLostTasks(pool, NO_HINTS, limits)).map((row) => row.id)).toContain(taskId);
    expect(await taskState(taskId)).toMatchObject({ status: 'queued', error: { code: 'WORKER_LOST' } });
  });

  it('prunes only workers silent since the server started, by ten times dead-after', async () => {
    const workerId = randomUUID();
    await addWorker(pool, workerId, 3_600_000);
    const exists = async () => (await pool.query('SELECT 1 FROM workers WHERE id = $1', [workerId])).rowCount === 1;
    await waitForServerUptime(pool, 1000);
    const sinceStart = await serverUptimeMs();
    await pruneDeadWorkers(pool, sinceStart);
    expect(await exists()).toBe(true);
    await pruneDeadWorkers(pool, Math.floor(sinceStart / 20));
    expect(await exists()).toBe(false);
  });
});
