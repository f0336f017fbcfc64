import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from '../../src/db/pool.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { eventually, runCli } from '../helpers/processes.js';

let url: string;
let easel: TestEasel;
let pool: Pool;
const started: TestEasel[] = [];

beforeAll(async () => {
  url = await createTestDatabase();
  // Workers of this one never gc: the CLI runs it, as an operator's cron would.
  easel = await startTestEasel(url, { env: { EASEL_GC_INTERVAL_MS: '0' } });
  pool = await createTestPool(url);
});
afterAll(async () => {
  await pool?.end();
  for (const other of started) await other.stop();
  await easel?.stop();
});

/** A finished sketch task, its image recorded `daysAgo` days ago by the database's clock. */
async function finishedTask(daysAgo: number): Promise<string> {
  const { status, body } = await api(easel.url, 'POST', '/v1/tasks', {
    provider: 'sketch',
    prompt: 'a lighthouse',
    width: 64,
    height: 64,
    steps: 2,
  });
  expect(status).toBe(202);
  await waitForStatus(easel.url, body.id, ['succeeded']);
  await pool.query(`UPDATE task_images SET created_at = now() - make_interval(days => $2) WHERE task_id = $1`, [
    body.id,
    daysAgo,
  ]);
  return body.id;
}

const gcEnv = () => ({ DATABASE_URL: url, EASEL_DATA_DIR: easel.config.dataDir, EASEL_IMAGE_RETENTION_DAYS: '30' });

describe('easel storage gc and expired images through the API', () => {
  it('dry run lists the image and changes nothing; the real run expires it; the API answers 410', async () => {
    const old = await finishedTask(40);
    const young = await finishedTask(2);
    expect((await fetch(`${easel.url}/v1/tasks/${old}/images/0`)).status).toBe(200);

    const dry = await runCli(['storage', 'gc', '--dry-run', '--json'], { env: gcEnv() });
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as {
      dry_run: boolean;
      images_expired: number;
      sample: { images: string[] };
    };
    expect(planned).toMatchObject({ dry_run: true, images_expired: 1, sample: { images: [`${old}/0`] } });
    expect((await fetch(`${easel.url}/v1/tasks/${old}/images/0`)).status).toBe(200);

    const real = await runCli(['storage', 'gc'], { env: gcEnv() });
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/did expire 1 images/);

    const gone = await fetch(`${easel.url}/v1/tasks/${old}/images/0`);
    expect(gone.status).toBe(410);
    expect(gone.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await gone.json()) as { code: string; detail: string; expired_at: string };
    expect(problem.code).toBe('IMAGE_EXPIRED');
    expect(problem.detail).toMatch(/EASEL_IMAGE_RETENTION_DAYS/);

    const task = await api(easel.url, 'GET', `/v1/tasks/${old}`);
    expect(task.body.images[0]).toMatchObject({
      url: `${easel.url}/v1/tasks/${old}/images/0`,
      expired_at: problem.expired_at,
    });
    expect((await api(easel.url, 'GET', `/v1/tasks/${young}`)).body.images[0]!.expired_at).toBeNull();
    expect((await fetch(`${easel.url}/v1/tasks/${young}/images/0`)).status).toBe(200);
    // Two runs of the real CLI, each a cold tsx start on a busy machine.
  }, 120_000);

  it('says so and exits 1 while another gc holds the lock', async () => {
    const holder = await pool.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtextextended('easel:storage-gc', 0))`);
      const result = await runCli(['storage', 'gc'], { env: gcEnv() });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/another gc is running/);
    } finally {
      await holder.query(`SELECT pg_advisory_unlock_all()`);
      holder.release();
    }
  }, 60_000);

  it('workers run gc on their own when EASEL_GC_INTERVAL_MS is set', async () => {
    const old = await finishedTask(40);
    const worker = await startTestEasel(url, {
      roles: { api: false, worker: true },
      env: { EASEL_GC_INTERVAL_MS: '200', EASEL_IMAGE_RETENTION_DAYS: '30' },
    });
    started.push(worker);
    await eventually(
      'a worker to expire the old image',
      async () => (await fetch(`${easel.url}/v1/tasks/${old}/images/0`)).status === 410,
      15_000,
    );
  });
});
