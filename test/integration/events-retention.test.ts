import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { pruneExpiredEvents } from '../../src/events/retention.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { eventually } from '../helpers/processes.js';
import { openSse } from '../helpers/sse.js';

let easel: TestEasel;
let otherProcess: Pool;
const taskId = '0190a0a0-0000-7000-8000-00000000e7e7';

beforeAll(async () => {
  const url = await createTestDatabase();
  // The API alone: no worker prunes behind the tests' backs until the last test starts one.
  easel = await startTestEasel(url, { roles: { api: true, worker: false } });
  otherProcess = await createTestPool(url);
});
afterAll(async () => {
  await otherProcess?.end();
  await easel?.stop();
});

/** Events written now, one transaction each, stamped `hoursAgo` in the past. */
async function writeEvents(pool: Pool, count: number, hoursAgo: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { rows } = await pool.query<{ event_id: string }>(
      `INSERT INTO task_events (task_id, user_id, type, data, created_at)
       VALUES ($1, $2, 'task:progress', '{"status":"running"}', now() - make_interval(hours => $3))
       RETURNING tx_id::text || '_' || id AS event_id`,
      [taskId, LOCAL_USER_ID, hoursAgo],
    );
    ids.push(rows[0]!.event_id);
  }
  return ids;
}

async function remaining(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ event_id: string }>(
    `SELECT e.tx_id::text || '_' || e.id AS event_id FROM task_events e ORDER BY e.tx_id, e.id`,
  );
  return rows.map((row) => row.event_id);
}

async function mark(pool: Pool): Promise<string> {
  const { rows } = await pool.query<{ mark: string }>(
    `SELECT pruned_through_tx::text || '_' || pruned_through_id AS mark FROM task_event_retention`,
  );
  return rows[0]!.mark;
}

describe('event retention', () => {
  it('prunes only events past retention, from the head of the log, and records the mark', async () => {
    const expired = await writeEvents(easel.pool, 5, 200);
    const fresh = await writeEvents(easel.pool, 3, 1);
    // Old, but after a fresh one in log order: kept until the head reaches it.
    const lateOld = await writeEvents(easel.pool, 1, 200);
    expect(await pruneExpiredEvents(easel.pool, { retentionHours: 168 })).toBe(5);
    expect(await remaining(easel.pool)).toEqual([...fresh, ...lateOld]);
    expect(await mark(easel.pool)).toBe(expired.at(-1));
    expect(await pruneExpiredEvents(easel.pool, { retentionHours: 168 })).toBe(0);
    expect(await pruneExpiredEvents(easel.pool, { retentionHours: 0 })).toBe(0);
  });

  it('is safe to run from two processes at once, in bounded batches', async () => {
    await easel.pool.query('DELETE FROM task_events');
    const expired = await writeEvents(easel.pool, 120, 300);
    const fresh = await writeEvents(easel.pool, 4, 2);
    // One call deletes at most batchSize × maxBatches.
    expect(await pruneExpiredEvents(easel.pool, { retentionHours: 168, batchSize: 7, maxBatches: 2 })).toBe(14);
    const options = { retentionHours: 168, batchSize: 7, maxBatches: 100 };
    const runs = await Promise.all([
      pruneExpiredEvents(easel.pool, options),
      pruneExpiredEvents(otherProcess, options),
      pruneExpiredEvents(easel.pool, options),
      pruneExpiredEvents(otherProcess, options),
    ]);
    // One pass may find another pruning and leave; whatever is left, a later tick takes.
    const more = await pruneExpiredEvents(easel.pool, options);
    expect(14 + runs.reduce((a, b) => a + b, 0) + more).toBe(expired.length);
    expect(await remaining(easel.pool)).toEqual(fresh);
    expect(await mark(easel.pool)).toBe(expired.at(-1));
  });

  it('answers 410 EVENT_ID_EXPIRED to a Last-Event-ID before the mark, and streams from the mark', async () => {
    const kept = await remaining(easel.pool);
    const pruned = await mark(easel.pool);
    const [tx, id] = pruned.split('_');
    const stale = `${tx}_${Number(id) - 1}`;
    const answer = await api<{ code: string; detail: string; status: number }>(
      easel.url,
      'GET',
      '/v1/events',
      undefined,
      { 'last-event-id': stale },
    );
    expect(answer.status).toBe(410);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(answer.body.code).toBe('EVENT_ID_EXPIRED');
    expect(answer.body.detail).toMatch(/GET \/v1\/tasks\/:id/);
    expect(answer.body.detail).toMatch(/without Last-Event-ID/);

    const resumed = await openSse(`${easel.url}/v1/events`, { 'last-event-id': pruned });
    try {
      await resumed.waitFor(() => resumed.updates().length >= kept.length);
      expect(resumed.updates().map((u) => u.event_id)).toEqual(kept);
    } finally {
      resumed.close();
    }
  });

  it("runs in the workers' maintenance tick", async () => {
    await easel.pool.query('DELETE FROM task_events');
    const expired = await writeEvents(easel.pool, 3, 500);
    const worker = await startTestEasel(easel.config.databaseUrl!, {
      roles: { api: false, worker: true },
      env: { EASEL_EVENT_RETENTION_HOURS: '1', EASEL_RESCUE_INTERVAL_MS: '100' },
    });
    try {
      await eventually('the worker to prune', async () => (await remaining(easel.pool)).length === 0, 10_000, 50);
      expect(await mark(easel.pool)).toBe(expired.at(-1));
    } finally {
      await worker.stop();
    }
  });
});
