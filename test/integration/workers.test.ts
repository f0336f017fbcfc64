import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Notifier } from '../../src/db/notifier.js';
import type { Pool } from '../../src/db/pool.js';
import { testLogger } from '../helpers/easel.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { succeedAttempt } from '../../src/tasks/attempt.js';
import { submitTask } from '../../src/tasks/submit.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { eventually, killAll, spawnEasel, type EaselProcess } from '../helpers/processes.js';

let databaseUrl: string;
let pool: Pool;
let notifier: Notifier;
const processes: EaselProcess[] = [];

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  pool = await createTestPool(databaseUrl);
  notifier = new Notifier(databaseUrl, testLogger());
});
afterEach(() => killAll(processes));
afterAll(async () => {
  await notifier?.close();
  await pool?.end();
});

const startWorker = (env: Record<string, string> = {}) => {
  const worker = spawnEasel(['worker'], {
    DATABASE_URL: databaseUrl,
    EASEL_DATA_DIR: '/tmp/easel-workers-test',
    ...env,
  });
  processes.push(worker);
  return worker;
};

const enqueue = (prompt: string, providerOptions: Record<string, unknown> = {}) =>
  submitTask(pool, notifier, {
    userId: LOCAL_USER_ID,
    kind: 'txt2img',
    provider: 'sketch',
    model: 'sketch-v1',
    params: { prompt, negative_prompt: null, width: 64, height: 64, steps: 2, guidance: 7, n: 1, seed: 3 },
    providerOptions,
    priority: 5,
    maxAttempts: 4,
  });

const count = async (sql: string, values: unknown[] = []) => Number((await pool.query(sql, values)).rows[0].n);

describe('worker processes', () => {
  it('two workers on one database run 500 tasks, none twice and none left behind', async () => {
    const workers = [startWorker({ EASEL_WORKER_CONCURRENCY: '8' }), startWorker({ EASEL_WORKER_CONCURRENCY: '8' })];
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) ids.push((await enqueue(`many ${i}`)).task.id);
    await eventually(
      'all 500 tasks to finish',
      async () => (await count(`SELECT count(*) AS n FROM tasks WHERE status IN ('succeeded', 'failed')`)) === 500,
      90_000,
      250,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${workers.map((w) => w.output().slice(-2000)).join('\n---\n')}`);
    });
    expect(await count(`SELECT count(*) AS n FROM tasks WHERE status = 'succeeded' AND attempt = 1`)).toBe(500);
    expect(await count(`SELECT count(*) AS n FROM task_events WHERE type = 'task:running'`)).toBe(500);
    expect(await count(`SELECT count(*) AS n FROM task_images`)).toBe(500);
    expect(await count(`SELECT count(DISTINCT worker_id) AS n FROM tasks`)).toBe(2);
  }, 120_000);

  it('runs the task of a worker killed with SIGKILL again within 45 s, exactly once, and fences the dead attempt', async () => {
    const doomed = startWorker();
    await eventually(
      'the worker to register',
      async () => (await count('SELECT count(*) AS n FROM workers')) > 0,
      20_000,
    );
    const { task } = await enqueue('survivor', { delay_ms: 4000 });
    const running = await eventually(
      'the task to start',
      async () =>
        (await pool.query(`SELECT lease_token FROM tasks WHERE id = $1 AND status = 'running'`, [task.id])).rows[0],
      20_000,
      20,
    );
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const killedAt = Date.now();
    startWorker();

    const rerunAt = await eventually(
      'a second attempt',
      async () => {
        const { rows } = await pool.query(
          `SELECT created_at FROM task_events WHERE task_id = $1 AND type = 'task:running' ORDER BY id OFFSET 1`,
          [task.id],
        );
        return rows[0]?.created_at as Date | undefined;
      },
      60_000,
      250,
    );
    expect(rerunAt.getTime() - killedAt).toBeLessThan(45_000);

    await eventually(
      'the task to succeed',
      async () => (await pool.query(`SELECT 1 FROM tasks WHERE id = $1 AND status = 'succeeded'`, [task.id])).rowCount,
      20_000,
    );
    // The killed attempt wakes up late and tries to record a result: nothing changes.
    const image = {
      index: 0,
      storage_key: 'late',
      content_type: 'image/png',
      bytes: 1,
      width: 1,
      height: 1,
      seed: 1,
      sha256: 'late',
      thumbnail_bytes: null,
      thumbnail_width: null,
      thumbnail_height: null,
      thumbnail_sha256: null,
    };
    expect(
      await succeedAttempt(
        pool,
        notifier,
        { taskId: task.id, token: running.lease_token, provider: 'sketch' },
        { predictTimeSeconds: 9, images: [image] },
      ),
    ).toBe(false);

    const { rows } = await pool.query('SELECT status, attempt, rescues FROM tasks WHERE id = $1', [task.id]);
    expect(rows[0]).toEqual({ status: 'succeeded', attempt: 2, rescues: 1 });
    expect(
      await count(`SELECT count(*) AS n FROM task_events WHERE task_id = $1 AND type = 'task:succeeded'`, [task.id]),
    ).toBe(1);
    expect(
      await count(`SELECT count(*) AS n FROM task_images WHERE task_id = $1 AND storage_key <> 'late'`, [task.id]),
    ).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM task_images WHERE storage_key = 'late'`)).toBe(0);
  }, 120_000);

  it('hands running tasks back on graceful shutdown without losing an attempt', async () => {
    const worker = startWorker({ EASEL_SHUTDOWN_GRACE_MS: '200' });
    const { task } = await enqueue('interrupted', { delay_ms: 20_000 });
    await eventually(
      'the task to start',
      async () => (await pool.query(`SELECT 1 FROM tasks WHERE id = $1 AND status = 'running'`, [task.id])).rowCount,
      20_000,
      20,
    );
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const { rows } = await pool.query('SELECT status, attempt, worker_id FROM tasks WHERE id = $1', [task.id]);
    expect(rows[0]).toEqual({ status: 'queued', attempt: 0, worker_id: null });
    expect(
      await count('SELECT count(*) AS n FROM workers WHERE id IN (SELECT worker_id FROM tasks WHERE id = $1)', [
        task.id,
      ]),
    ).toBe(0);
  }, 60_000);
});
