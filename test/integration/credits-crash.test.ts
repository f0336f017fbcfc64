import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Pool, PoolClient } from '../../src/db/pool.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { rescueLostTasks } from '../../src/tasks/rescue.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { eventually, killAll, spawnEasel, type EaselProcess } from '../helpers/processes.js';
import { expectLedgerConsistent, ledgerOf } from '../helpers/credits.js';

/**
 * A worker killed after the provider answered but before its success committed still charges
 * exactly once. The moment is made exact, not timed: the test locks the task's hold row, so the
 * worker's success statement (which updates the task, records the images and captures the hold
 * together) stops on that lock after the sketch has rendered; the test sees it waiting in
 * pg_stat_activity and kills the worker with SIGKILL there.
 */

const PRICES = JSON.stringify({ 'sketch/sketch-v1': { per_task: 1 } });
const WORKER_ENV = {
  EASEL_HEARTBEAT_MS: '300',
  EASEL_WORKER_DEAD_AFTER_MS: '1500',
  EASEL_SHUTDOWN_GRACE_MS: '1000',
  EASEL_RESCUE_INTERVAL_MS: '200',
  EASEL_POLL_INTERVAL_MS: '200',
  EASEL_PRICES: PRICES,
};

let databaseUrl: string;
let pool: Pool;
let apiOnly: TestEasel;
const processes: EaselProcess[] = [];
const started: TestEasel[] = [];

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  pool = await createTestPool(databaseUrl);
  apiOnly = await startTestEasel(databaseUrl, { roles: { api: true, worker: false }, env: { EASEL_PRICES: PRICES } });
});
afterEach(async () => {
  await killAll(processes);
  for (const easel of started.splice(0)) await easel.stop();
});
afterAll(async () => {
  await apiOnly?.stop();
  await pool?.end();
});

async function spawnWorker(): Promise<EaselProcess> {
  const worker = spawnEasel(['worker'], {
    DATABASE_URL: databaseUrl,
    EASEL_DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'easel-credits-crash-')),
    ...WORKER_ENV,
  });
  processes.push(worker);
  await eventually('the worker to start', async () => worker.output().includes('worker started'), 30_000);
  return worker;
}

/** The backend of the worker's success statement, once it waits for the test's lock. */
async function waitingCapture(): Promise<number> {
  return eventually(
    'the success statement to wait on the hold',
    async () => {
      const { rows } = await pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE '%UPDATE tasks SET status = ''succeeded''%'`,
      );
      // (pg_stat_activity keeps the statement's first 1024 bytes: its start is what we match.)
      return rows[0]?.pid;
    },
    30_000,
    20,
  );
}

/** Submit a priced sketch and lock its hold before any worker runs. */
async function submitLocked(): Promise<{ taskId: string; lock: PoolClient }> {
  const submitted = await api(apiOnly.url, 'POST', '/v1/tasks', {
    prompt: 'charged once',
    provider: 'sketch',
    width: 64,
    height: 64,
    steps: 2,
    provider_options: { delay_ms: 300 },
  });
  expect(submitted.status).toBe(202);
  const lock = await pool.connect();
  await lock.query('BEGIN');
  const { rowCount } = await lock.query(
    `SELECT 1 FROM credit_holds WHERE task_id = $1 AND status = 'open' FOR UPDATE`,
    [submitted.body.id],
  );
  expect(rowCount).toBe(1);
  return { taskId: submitted.body.id, lock };
}

/** An in-process worker that rescues the dead worker's task and runs it again. */
async function startRescuer(): Promise<TestEasel> {
  const easel = await startTestEasel(databaseUrl, { roles: { api: false, worker: true }, env: WORKER_ENV });
  started.push(easel);
  return easel;
}

async function settled(taskId: string): Promise<{ status: string; rescues: number }> {
  return eventually(
    'the task to finish',
    async () => {
      const { rows } = await pool.query<{ status: string; rescues: number }>(
        'SELECT status, rescues FROM tasks WHERE id = $1',
        [taskId],
      );
      return ['succeeded', 'failed', 'canceled'].includes(rows[0]!.status) ? rows[0] : undefined;
    },
    30_000,
  );
}

const capturesOf = async (taskId: string) =>
  (await ledgerOf(pool, LOCAL_USER_ID)).filter((entry) => entry.task_id === taskId && entry.kind === 'capture');

describe('a worker killed between the provider’s answer and the success commit', () => {
  beforeAll(async () => {
    const topUp = await api(apiOnly.url, 'POST', `/v1/users/${LOCAL_USER_ID}/credits`, { amount: 10, reason: 'crash' });
    expect(topUp.status).toBe(201);
  });

  it('whose statement dies with it: the task is rescued, runs again and is captured once', async () => {
    const { taskId, lock } = await submitLocked();
    const worker = await spawnWorker();
    const backend = await waitingCapture();
    worker.child.kill('SIGKILL');
    await worker.exited;
    // The connection of a killed process dies with it; make that immediate rather than left
    // to the server noticing the closed socket.
    await pool.query('SELECT pg_terminate_backend($1)', [backend]);
    await eventually(
      'the backend to go',
      async () => (await pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [backend])).rowCount === 0,
      10_000,
    );
    await lock.query('ROLLBACK');
    lock.release();
    const { rows } = await pool.query('SELECT status FROM tasks WHERE id = $1', [taskId]);
    expect(rows[0].status).toBe('running');
    expect(await capturesOf(taskId)).toEqual([]);

    await startRescuer();
    expect(await settled(taskId)).toEqual({ status: 'succeeded', rescues: 1 });
    expect(await capturesOf(taskId)).toHaveLength(1);
    await expectLedgerConsistent(pool);
  }, 90_000);

  it('whose statement outlives it: whether it commits or not, the task is captured once', async () => {
    const { taskId, lock } = await submitLocked();
    const worker = await spawnWorker();
    await waitingCapture();
    worker.child.kill('SIGKILL');
    await worker.exited;
    // The orphaned statement goes on once the lock is free: it may commit the success itself.
    await lock.query('ROLLBACK');
    lock.release();
    await startRescuer();
    expect((await settled(taskId)).status).toBe('succeeded');
    expect(await capturesOf(taskId)).toHaveLength(1);
    const balance = await api<{ balance: number; held: number }>(apiOnly.url, 'GET', '/v1/me/balance');
    expect(balance.body).toMatchObject({ balance: 8, held: 0 });
    await expectLedgerConsistent(pool);
  }, 90_000);

  it('a rescue that fails the task (out of attempts) releases its hold and charges nothing', async () => {
    const submitted = await api(apiOnly.url, 'POST', '/v1/tasks', {
      prompt: 'lost for good',
      provider: 'sketch',
      width: 64,
      height: 64,
      steps: 2,
      max_attempts: 1,
    });
    expect(submitted.status).toBe(202);
    // Claimed by a worker that never existed, as if it had died at once (no worker runs here).
    await pool.query(
      `UPDATE tasks SET status = 'running', attempt = 1, worker_id = gen_random_uuid(), lease_token = gen_random_uuid(),
                        started_at = now() WHERE id = $1`,
      [submitted.body.id],
    );
    const rescued = await rescueLostTasks(pool, NO_HINTS, { deadAfterMs: 1000, taskTimeoutMs: 60_000 });
    expect(rescued).toContainEqual({ id: submitted.body.id, status: 'failed', provider: 'sketch' });
    const entries = (await ledgerOf(pool, LOCAL_USER_ID)).filter((entry) => entry.task_id === submitted.body.id);
    expect(entries.map((entry) => entry.kind)).toEqual(['hold', 'release']);
    const task = await api(apiOnly.url, 'GET', `/v1/tasks/${submitted.body.id}`);
    expect(task.body).toMatchObject({ status: 'failed', cost: 0, hold: null });
    await expectLedgerConsistent(pool);
  });
});
