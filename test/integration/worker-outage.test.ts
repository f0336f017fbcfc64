import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migrate } from '../../src/db/migrate.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { createPool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { submitTask } from '../../src/tasks/submit.js';
import { testLogger } from '../helpers/easel.js';
import { eventually, killAll, spawnEasel, type EaselProcess } from '../helpers/processes.js';

/** A PostgreSQL server of its own, so stopping it disturbs no other test file. */
let root: string;
let server: EmbeddedPostgres;
const processes: EaselProcess[] = [];

const restartServer = async () => {
  server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), port: server.port, log: testLogger() });
};

/** One short-lived connection per call: the server comes and goes under these tests. */
async function query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: server.connectionString });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

async function enqueue(prompt: string, providerOptions: Record<string, unknown> = {}): Promise<string> {
  const pool = createPool(server.connectionString, { max: 1 });
  try {
    const { task } = await submitTask(pool, NO_HINTS, {
      userId: LOCAL_USER_ID,
      kind: 'txt2img',
      provider: 'sketch',
      model: 'sketch-v1',
      params: { prompt, negative_prompt: null, width: 64, height: 64, steps: 4, guidance: 7, n: 1, seed: 3 },
      providerOptions,
      priority: 5,
      maxAttempts: 4,
    });
    return task.id;
  } finally {
    await pool.end();
  }
}

const startWorker = (env: Record<string, string> = {}) => {
  const worker = spawnEasel(['worker'], {
    DATABASE_URL: server.connectionString,
    EASEL_DATA_DIR: path.join(root, 'data'),
    EASEL_HEARTBEAT_MS: '300',
    EASEL_POLL_INTERVAL_MS: '200',
    ...env,
  });
  processes.push(worker);
  return worker;
};

const withOutput = (worker: EaselProcess) => (error: Error) => {
  throw new Error(`${error.message}\n--- worker output ---\n${worker.output().slice(-4000)}`);
};

const statusOf = async (taskId: string) =>
  (await query<{ status: string; attempt: number }>('SELECT status, attempt FROM tasks WHERE id = $1', [taskId]))[0];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'easel-outage-'));
  await chmod(root, 0o755);
  server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), log: testLogger() });
  const pool = createPool(server.connectionString, { max: 1 });
  await migrate(pool).finally(() => pool.end());
});
afterEach(() => killAll(processes));
afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('a worker during a database outage', () => {
  it('stays alive, writes the outcome of an attempt that finished meanwhile, and claims again afterwards', async () => {
    const worker = startWorker();
    await eventually('the worker to start', async () => worker.output().includes('worker started'), 20_000);
    const spanning = await enqueue('finishes during the outage', { delay_ms: 2500 });
    await eventually('the task to start', async () => (await statusOf(spanning))?.status === 'running', 20_000, 20);

    await server.stop();
    // Long enough for the attempt to finish while the database is away.
    const exited = await Promise.race([worker.exited.then((code) => ({ code })), sleep(5000).then(() => undefined)]);
    expect(exited, `the worker exited during the outage:\n${worker.output().slice(-4000)}`).toBeUndefined();
    await restartServer();

    // Written as soon as the database is back, not after the 5-minute attempt timeout.
    await eventually(
      'the outcome kept during the outage to be written',
      async () => (await statusOf(spanning))?.status === 'succeeded',
      20_000,
      200,
    ).catch(withOutput(worker));
    expect(await statusOf(spanning)).toEqual({ status: 'succeeded', attempt: 1 });
    expect(await query('SELECT 1 FROM task_images WHERE task_id = $1', [spanning])).toHaveLength(1);
    expect(
      await query(`SELECT 1 FROM task_events WHERE task_id = $1 AND type = 'task:succeeded'`, [spanning]),
    ).toHaveLength(1);

    const after = await enqueue('queued after the outage');
    await eventually('new work to run', async () => (await statusOf(after))?.status === 'succeeded', 20_000).catch(
      withOutput(worker),
    );
  }, 90_000);

  it('exits with a non-zero status, saying why, once the database stays away past EASEL_DATABASE_GIVE_UP_MS', async () => {
    const worker = startWorker({ EASEL_DATABASE_GIVE_UP_MS: '2000' });
    await eventually('the worker to start', async () => worker.output().includes('worker started'), 20_000);
    await server.stop();
    try {
      const code = await Promise.race([worker.exited, sleep(30_000).then(() => 'still running')]);
      expect(code, worker.output().slice(-4000)).toBe(1);
      expect(worker.output()).toMatch(/unreachable for \d+ s, longer than EASEL_DATABASE_GIVE_UP_MS/);
    } finally {
      await restartServer();
    }
  }, 60_000);
});
