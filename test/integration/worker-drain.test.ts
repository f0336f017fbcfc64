import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NO_HINTS } from '../../src/db/notifier.js';
import type { Pool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { submitTask } from '../../src/tasks/submit.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { eventually, killAll, spawnEasel, type EaselProcess } from '../helpers/processes.js';

let databaseUrl: string;
let pool: Pool;
const processes: EaselProcess[] = [];

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  pool = await createTestPool(databaseUrl);
});
afterEach(() => killAll(processes));
afterAll(async () => {
  await pool?.end();
});

const startWorker = async (env: Record<string, string>) => {
  const worker = spawnEasel(['worker'], {
    DATABASE_URL: databaseUrl,
    EASEL_DATA_DIR: '/tmp/easel-drain-test',
    EASEL_POLL_INTERVAL_MS: '200',
    ...env,
  });
  processes.push(worker);
  await eventually('the worker to start', async () => worker.output().includes('worker started'), 20_000);
  return worker;
};

describe('a worker draining on SIGTERM', () => {
  it('keeps heartbeating, so a peer with a short dead-after does not rescue its task; the task runs once', async () => {
    // The draining worker's grace (19 s) outlasts the peer's dead-after (2 s) many times over,
    // and the task (15 s) is still running long after the draining worker's last tick before SIGTERM.
    const draining = await startWorker({
      EASEL_HEARTBEAT_MS: '300',
      EASEL_WORKER_DEAD_AFTER_MS: '20000',
      EASEL_SHUTDOWN_GRACE_MS: '19000',
    });
    const { task } = await submitTask(pool, NO_HINTS, {
      userId: LOCAL_USER_ID,
      kind: 'txt2img',
      provider: 'sketch',
      model: 'sketch-v1',
      params: { prompt: 'drains', negative_prompt: null, width: 64, height: 64, steps: 4, guidance: 7, n: 1, seed: 3 },
      providerOptions: { delay_ms: 15_000 },
      priority: 5,
      maxAttempts: 4,
    });
    await eventually(
      'the task to start',
      async () => (await pool.query(`SELECT 1 FROM tasks WHERE id = $1 AND status = 'running'`, [task.id])).rowCount,
      20_000,
      20,
    );
    const peer = await startWorker({
      EASEL_HEARTBEAT_MS: '500',
      EASEL_WORKER_DEAD_AFTER_MS: '2000',
      EASEL_SHUTDOWN_GRACE_MS: '1000',
      EASEL_RESCUE_INTERVAL_MS: '200',
    });

    draining.child.kill('SIGTERM');
    expect(await draining.exited, draining.output().slice(-3000)).toBe(0);
    const { rows } = await pool.query('SELECT status, attempt, rescues FROM tasks WHERE id = $1', [task.id]);
    expect(rows[0], peer.output().slice(-3000)).toEqual({ status: 'succeeded', attempt: 1, rescues: 0 });
    const { rows: runs } = await pool.query(
      `SELECT count(*)::int AS n FROM task_events WHERE task_id = $1 AND type = 'task:running'`,
      [task.id],
    );
    expect(runs[0].n).toBe(1);
  }, 60_000);
});
