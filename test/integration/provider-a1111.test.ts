import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import sharp from 'sharp';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { openSse } from '../helpers/sse.js';
import { FakeA1111, startFakeA1111 } from '../fakes/a1111.js';

/**
 * AUTOMATIC1111 servers as a pool behind a real Easel (API + worker, real PostgreSQL): tasks
 * spread over the servers, a server that is down is skipped and rejoins once it answers,
 * previews reach the task resource, the event stream and the preview route, and cancel
 * interrupts the job on the server.
 */

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function easelWith(urls: string[], env: Record<string, string> = {}): Promise<TestEasel> {
  const easel = await startTestEasel(await createTestDatabase(), {
    env: {
      EASEL_SECRET_KEY: randomBytes(32).toString('hex'),
      A1111_URLS: urls.join(','),
      A1111_PROGRESS_INTERVAL_MS: '100',
      A1111_UNREACHABLE_COOLDOWN_MS: '1000',
      ...env,
    },
  });
  cleanups.push(() => easel.stop());
  return easel;
}

const submit = async (easel: TestEasel, overrides: Record<string, unknown> = {}) => {
  const answer = await api(easel.url, 'POST', '/v1/tasks', {
    provider: 'a1111',
    model: 'default',
    prompt: 'a lighthouse at dusk',
    width: 64,
    height: 64,
    steps: 4,
    ...overrides,
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return answer.body.id;
};

describe('a1111 backends as a pool', () => {
  it('runs on the server that answers while the other is down, and uses that one again once it is back', async () => {
    const up = await startFakeA1111({ stepMs: 20 });
    cleanups.push(() => up.close());
    const downPort = await freePort();
    const down = new FakeA1111({ stepMs: 20, port: downPort });
    const downUrl = `http://127.0.0.1:${downPort}`;
    const easel = await easelWith([up.url, downUrl]);

    // Two at once: the answering server runs one at a time, so the other task is claimed with
    // the down server, which refuses the connection.
    const first = await Promise.all([submit(easel, { steps: 15 }), submit(easel, { steps: 15 })]);
    for (const id of first) {
      const done = await waitForStatus(easel.url, id, ['succeeded', 'failed'], 20_000);
      expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    }
    expect(up.generations).toHaveLength(2);

    // The down server was tried, cooled down, and its task handed on uncounted.
    const { rows } = await easel.pool.query<{ last_error_code: string | null; disabled_reason: string | null }>(
      `SELECT last_error_code, disabled_reason FROM credentials WHERE provider = 'a1111' AND label LIKE $1`,
      [`%${downUrl}`],
    );
    expect(rows).toEqual([{ last_error_code: 'BACKEND_UNAVAILABLE', disabled_reason: null }]);
    for (const id of first) expect((await api(easel.url, 'GET', `/v1/tasks/${id}`)).body.attempt).toBe(1);

    // It comes back on the same address: after its cooldown it takes tasks again. Two long
    // tasks at once: each server runs one at a time, so the second one needs the revived server.
    await down.start();
    cleanups.push(() => down.close());
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const second = await Promise.all([submit(easel, { steps: 30 }), submit(easel, { steps: 30 })]);
    for (const id of second) {
      const done = await waitForStatus(easel.url, id, ['succeeded', 'failed'], 20_000);
      expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
      expect(done.attempt).toBe(1);
    }
    expect(down.generations.length).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

describe('a1111 progress previews', () => {
  it('shows the latest preview on the task and its events while it runs, throttled, and drops it at the end', async () => {
    const fake = await startFakeA1111({ stepMs: 40 });
    cleanups.push(() => fake.close());
    const easel = await easelWith([fake.url], { EASEL_PREVIEW_INTERVAL_MS: '500' });
    const id = await submit(easel, { steps: 75, width: 64, height: 64 });
    const stream = await openSse(`${easel.url}/v1/events?task_id=${id}`);
    cleanups.push(async () => stream.close());

    // While it runs: the task names a preview, and the preview route serves it.
    let previewUrl: string | null = null;
    const deadline = Date.now() + 10_000;
    while (!previewUrl && Date.now() < deadline) {
      const task = (await api(easel.url, 'GET', `/v1/tasks/${id}`)).body;
      if (task.status !== 'running' && task.status !== 'queued') break;
      previewUrl = task.preview_url;
      if (!previewUrl) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(previewUrl).toMatch(new RegExp(`^${easel.url}/v1/tasks/${id}/preview\\?v=\\d+$`));
    const response = await fetch(previewUrl!);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('cache-control')).toContain('no-store');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect((await sharp(bytes).metadata()).width).toBe(64);

    const done = await waitForStatus(easel.url, id, ['succeeded', 'failed'], 20_000);
    expect(done.status).toBe('succeeded');
    expect(done.preview_url).toBeNull();

    // Events: progress updates carry preview_url, with distinct versions, at most one per 500 ms
    // interval, although the fake showed a new frame every 40 ms (75 of them).
    await stream.waitFor((messages) => messages.some((message) => message.event === 'done'));
    const urls = stream
      .updates()
      .filter((update) => update.type === 'task:progress' && typeof update.preview_url === 'string')
      .map((update) => update.preview_url as string);
    expect(urls.length).toBeGreaterThanOrEqual(2);
    expect(new Set(urls).size).toBeGreaterThanOrEqual(2);
    const versions = [...new Set(urls)].map((url) => Number(new URL(url, 'http://x').searchParams.get('v')));
    const ranMs = new Date(done.finished_at!).getTime() - new Date(done.started_at!).getTime();
    expect(versions.length).toBeLessThanOrEqual(Math.ceil(ranMs / 500) + 1);
    expect(fake.progressPolls).toBeGreaterThan(versions.length);

    // The attempt is over: the preview is gone from the database and the route says so.
    const gone = await api<{ code: string }>(easel.url, 'GET', `/v1/tasks/${id}/preview`);
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('PREVIEW_NOT_FOUND');
    expect(gone.headers.get('content-type')).toContain('application/problem+json');
    const { rows } = await easel.pool.query('SELECT 1 FROM task_previews WHERE task_id = $1', [id]);
    expect(rows).toHaveLength(0);
  }, 60_000);

  it('the preview route is a 404 TASK_NOT_FOUND for a task that does not exist', async () => {
    const fake = await startFakeA1111();
    cleanups.push(() => fake.close());
    const easel = await easelWith([fake.url]);
    const missing = await api<{ code: string }>(
      easel.url,
      'GET',
      '/v1/tasks/01900000-0000-7000-8000-0000000000ff/preview',
    );
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('TASK_NOT_FOUND');
  }, 30_000);
});

describe('a1111 cancel', () => {
  it('canceling a running task interrupts the job on the server', async () => {
    const fake = await startFakeA1111({ stepMs: 30 });
    cleanups.push(() => fake.close());
    const easel = await easelWith([fake.url]);
    const id = await submit(easel, { steps: 150 });
    await expect.poll(() => fake.running, { timeout: 10_000 }).toBe(true);
    const canceled = await api(easel.url, 'POST', `/v1/tasks/${id}/cancel`);
    expect(canceled.status).toBeLessThan(300);
    const done = await waitForStatus(easel.url, id, ['canceled', 'succeeded', 'failed'], 10_000);
    expect(done.status).toBe('canceled');
    await expect.poll(() => fake.interrupts, { timeout: 5000 }).toBe(1);
    await expect.poll(() => fake.running, { timeout: 2000 }).toBe(false);
  }, 30_000);
});
