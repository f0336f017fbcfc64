import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import type { Pool } from '../../src/db/pool.js';
import { createProviderRegistry } from '../../src/providers/index.js';
import { TaskService } from '../../src/tasks/service.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';

/** Submit semantics: Prefer, Idempotency-Key replays, the queue bound, answers after the insert. */

let databaseUrl: string;
let easel: TestEasel;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl);
});
afterAll(async () => {
  await easel?.stop();
});

const quick = { prompt: 'quick', width: 64, height: 64, steps: 2 };

describe('Prefer', () => {
  it.each(['waitlist', 'wait=abc', 'wait=-1', 'wait'])(
    '%s is not a wait: 202 at once, no Preference-Applied',
    async (prefer) => {
      const response = await api(easel.url, 'POST', '/v1/tasks', quick, { prefer });
      expect(response.status).toBe(202);
      expect(response.headers.get('preference-applied')).toBeNull();
      await waitForStatus(easel.url, response.body.id, ['succeeded']);
    },
  );

  it('finds wait among other preferences, case-insensitively', async () => {
    const response = await api(easel.url, 'POST', '/v1/tasks', quick, { prefer: 'respond-async, WAIT=10' });
    expect(response.status).toBe(200);
    expect(response.headers.get('preference-applied')).toBe('wait=10');
    expect(response.body.status).toBe('succeeded');
  });
});

describe('Idempotency-Key', () => {
  const key = () => `key-${Math.random().toString(36).slice(2)}`;

  it('a replay that spells out defaults, without a seed, is the same request', async () => {
    const headers = { 'idempotency-key': key() };
    const first = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'defaults', width: 64, height: 64 }, headers);
    expect(first.status).toBe(202);
    const again = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      {
        prompt: 'defaults',
        width: 64,
        height: 64,
        steps: 20,
        n: 1,
        guidance: 7,
        priority: 5,
        provider: 'sketch',
        kind: 'txt2img',
        provider_options: {},
      },
      headers,
    );
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it('a replay of a finished task answers 202 like a fresh submit, or 200 when it waited', async () => {
    const headers = { 'idempotency-key': key() };
    const first = await api(easel.url, 'POST', '/v1/tasks', quick, headers);
    expect(first.status).toBe(202);
    await waitForStatus(easel.url, first.body.id, ['succeeded']);

    const replay = await api(easel.url, 'POST', '/v1/tasks', quick, headers);
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toMatchObject({ id: first.body.id, status: 'succeeded' });

    const waited = await api(easel.url, 'POST', '/v1/tasks', quick, { ...headers, prefer: 'wait=5' });
    expect(waited.status).toBe(200);
    expect(waited.headers.get('idempotent-replayed')).toBe('true');
    expect(waited.headers.get('preference-applied')).toBe('wait=5');
  });

  it('a different seed, or a seed where the first had none, is a different request', async () => {
    const headers = { 'idempotency-key': key() };
    expect((await api(easel.url, 'POST', '/v1/tasks', quick, headers)).status).toBe(202);
    const seeded = await api<{ code: string }>(easel.url, 'POST', '/v1/tasks', { ...quick, seed: 1 }, headers);
    expect(seeded.status).toBe(409);
    expect(seeded.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('times in answers', () => {
  it('rounds predict_time to the millisecond', async () => {
    const done = await api(easel.url, 'POST', '/v1/tasks', quick, { prefer: 'wait=10' });
    await easel.pool.query('UPDATE tasks SET predict_time = 0.123456789 WHERE id = $1', [done.body.id]);
    expect((await api(easel.url, 'GET', `/v1/tasks/${done.body.id}`)).body.predict_time).toBe(0.123);
  });
});

describe('when the reads after the insert fail', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await createTestPool(databaseUrl);
  });
  afterAll(async () => {
    await pool?.end();
  });

  it('the submit still answers with the queued task, without position or ETA', async () => {
    // Only the statements of the submit itself get through; every read after it fails.
    // (The insert itself runs in a transaction on a client of its own: see src/tasks/active-limit.ts.)
    const submitStatements = new Set(['easel_count_queued', 'easel_read_max_priority']);
    const flaky = {
      query: (config: { name?: string }, values?: unknown[]) =>
        submitStatements.has(config.name ?? '')
          ? pool.query(config as never, values)
          : Promise.reject(new Error('Connection terminated unexpectedly')),
      connect: () => pool.connect(),
    } as unknown as Pool;
    const service = new TaskService(
      flaky,
      createProviderRegistry(),
      loadConfig({ DATABASE_URL: databaseUrl }),
      NO_HINTS,
    );

    const { view, degradedBy } = await service.submit('00000000-0000-0000-0000-000000000001', {
      prompt: 'committed',
      provider_options: { delay_ms: 60_000 },
    });
    expect(view.task.status).toBe('queued');
    expect(view.queuePosition).toBeNull();
    expect(view.etaSeconds).toBeNull();
    expect(String(degradedBy)).toMatch(/Connection terminated/);
    const { rows } = await pool.query('SELECT status FROM tasks WHERE id = $1', [view.task.id]);
    expect(rows).toEqual([{ status: 'queued' }]);
    await api(easel.url, 'POST', `/v1/tasks/${view.task.id}/cancel`);
  });
});

describe('EASEL_MAX_QUEUED_TASKS', () => {
  let bounded: TestEasel;
  beforeAll(async () => {
    // API only: with no worker, queued tasks stay queued.
    bounded = await startTestEasel(await createTestDatabase(), {
      roles: { api: true, worker: false },
      env: { EASEL_MAX_QUEUED_TASKS: '2' },
    });
  });
  afterAll(async () => {
    await bounded?.stop();
  });

  it('answers 503 QUEUE_FULL with Retry-After at the bound, writing nothing', async () => {
    for (let i = 0; i < 2; i++) expect((await api(bounded.url, 'POST', '/v1/tasks', quick)).status).toBe(202);
    const state = async () =>
      (
        await bounded.pool.query(
          `SELECT (SELECT count(*)::int FROM tasks) AS tasks, (SELECT count(*)::int FROM task_events) AS events,
                  (SELECT json_agg(uc) FROM user_clocks uc) AS clocks`,
        )
      ).rows[0];
    const before = await state();
    const refused = await api<{ code: string }>(bounded.url, 'POST', '/v1/tasks', quick);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body.code).toBe('QUEUE_FULL');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await state()).toEqual(before);

    // A finished task frees a place (once the next count sees it, within a second).
    const [queued] = (await bounded.pool.query(`SELECT id FROM tasks LIMIT 1`)).rows;
    await api(bounded.url, 'POST', `/v1/tasks/${queued.id}/cancel`);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await api(bounded.url, 'POST', '/v1/tasks', quick)).status).toBe(202);
  });
});
