import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import type { Pool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { api, startTestEasel, testLogger, type TestEasel } from '../helpers/easel.js';
import { queryOnce } from '../helpers/database.js';
import { eventually } from '../helpers/processes.js';
import { openSse, type SseRecorder } from '../helpers/sse.js';
import { advanceTransactionIdsTo, nextTransactionId } from '../helpers/xids.js';

/**
 * Event ids are `<tx_id>_<id>`, and transaction ids grow past 999, 9999, … in any real database.
 * These tests push the cluster's transaction ids across powers of ten and check that replay,
 * live delivery and resume follow numeric order there, not the text order of the id strings.
 *
 * The file runs a young server of its own: on the shared test cluster, other files consume
 * transaction ids meanwhile and can jump past a boundary before an event lands just below it.
 */

let root: string;
let server: EmbeddedPostgres;

let easel: TestEasel;
let taskId: string;
/** Events written by this file, in numeric log order as the database sorts xid8. */
let written: string[] = [];
/** What a client following the user's stream received while they were written. */
let liveIds: string[] = [];
const boundaries: bigint[] = [];

/** The most xids this file burns to reach the boundaries after the first (~140k per second). */
const XID_BUDGET = 3_000_000n;
/** Events written below each boundary before crossing it. */
const BELOW = 200n;

async function writeEvent(pool: Pool, progress: number): Promise<{ eventId: string; txId: bigint }> {
  const { rows } = await pool.query<{ tx: string; id: number }>(
    `INSERT INTO task_events (task_id, user_id, type, data)
     VALUES ($1, $2, 'task:progress', jsonb_build_object('status', 'running', 'stage', 'xid test', 'progress', $3::int))
     RETURNING tx_id::text AS tx, id`,
    [taskId, LOCAL_USER_ID, progress],
  );
  return { eventId: `${rows[0]!.tx}_${rows[0]!.id}`, txId: BigInt(rows[0]!.tx) };
}

/** Every event of the task in log order, sorted by the database on the xid8 column itself. */
async function logOrder(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ event_id: string }>(
    `SELECT e.tx_id::text || '_' || e.id AS event_id FROM task_events e WHERE e.task_id = $1 ORDER BY e.tx_id, e.id`,
    [taskId],
  );
  return rows.map((row) => row.event_id);
}

/**
 * Write events one transaction each, from just below `boundary` to just past it. A transaction
 * held open meanwhile keeps them all above the read horizon, so a hub that follows the log
 * receives them in one batch that straddles the boundary.
 */
async function writeEventsAcross(pool: Pool, boundary: bigint): Promise<void> {
  await advanceTransactionIdsTo(pool, boundary - BELOW);
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT pg_current_xact_id()');
    for (let i = 0; i < 5000; i++) {
      const { txId } = await writeEvent(pool, i % 100);
      if (txId >= boundary + 5n) return;
    }
    throw new Error(`transaction ids did not pass ${boundary}`);
  } finally {
    await holder.query('COMMIT');
    holder.release();
  }
}

const updatesOf = (stream: SseRecorder) => stream.updates().filter((u) => u.task_id === taskId);

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'easel-xids-'));
  await chmod(root, 0o755);
  server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), log: testLogger() });
  await queryOnce(server.connectionString, 'CREATE DATABASE easel_xids');
  const url = new URL(server.connectionString);
  url.pathname = '/easel_xids';
  easel = await startTestEasel(url.toString(), { roles: { api: true, worker: false } });
  const { body } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'xid order', width: 64, height: 64 });
  taskId = body.id;

  // The next powers of ten: always the first, then more while the budget lasts.
  const start = await nextTransactionId(easel.pool);
  for (let power = 10n; boundaries.length < 3; power *= 10n) {
    if (power - BELOW <= start + 10n) continue;
    if (boundaries.length > 0 && power - start > XID_BUDGET) break;
    boundaries.push(power);
  }

  // A client that follows the user's whole stream while the events are written.
  const live = await openSse(`${easel.url}/v1/events`);
  await live.waitFor((messages) => messages.some((m) => m.event === 'connected'));
  for (const boundary of boundaries) await writeEventsAcross(easel.pool, boundary);
  written = await logOrder(easel.pool);
  // A skipping hub never gets there: the test below shows what arrived.
  await live.waitFor(() => updatesOf(live).length >= written.length - 1, 5000).catch(() => undefined);
  live.close();
  liveIds = updatesOf(live).map((u) => u.event_id);
}, 300_000);

afterAll(async () => {
  await easel?.stop();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('event order across transaction-id powers of ten', () => {
  it('wrote events on both sides of every boundary', () => {
    expect(boundaries.length).toBeGreaterThan(0);
    const txs = written.map((id) => BigInt(id.split('_')[0]!));
    for (const boundary of boundaries) {
      expect(txs.some((tx) => tx < boundary && tx >= boundary - 2n * BELOW)).toBe(true);
      expect(txs.some((tx) => tx >= boundary)).toBe(true);
    }
  });

  it('delivers live events in numeric order, none skipped', () => {
    // The task's queued event came before the client connected.
    expect(liveIds).toEqual(written.slice(1));
  });

  it('replays a task from its start in numeric order', async () => {
    const stream = await openSse(`${easel.url}/v1/events?task_id=${taskId}`);
    try {
      await stream.waitFor(() => updatesOf(stream).length >= written.length);
    } finally {
      stream.close();
    }
    expect(updatesOf(stream).map((u) => u.event_id)).toEqual(written);
  });

  it('resumes with a Last-Event-ID just below each boundary with nothing skipped or repeated', async () => {
    for (const boundary of boundaries) {
      const below = written.filter((id) => BigInt(id.split('_')[0]!) < boundary).at(-1)!;
      const expected = written.slice(written.indexOf(below) + 1);
      const stream = await openSse(`${easel.url}/v1/events?task_id=${taskId}`, { 'last-event-id': below });
      try {
        await stream.waitFor(() => updatesOf(stream).length >= expected.length);
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        stream.close();
      }
      expect({ boundary, ids: updatesOf(stream).map((u) => u.event_id) }).toEqual({ boundary, ids: expected });
    }
  });

  it('starts a fresh stream at the newest event, replaying nothing old as new', async () => {
    // No one listens now, so the hub must find the newest event itself when this client joins.
    await eventually('earlier clients to be gone', async () => easel.hub!.subscriberCount === 0, 5000, 20);
    const stream = await openSse(`${easel.url}/v1/events`);
    try {
      await stream.waitFor((messages) => messages.some((m) => m.event === 'connected'));
      const { eventId } = await writeEvent(easel.pool, 99);
      await stream.waitFor(() => updatesOf(stream).some((u) => u.event_id === eventId));
      expect(updatesOf(stream).map((u) => u.event_id)).toEqual([eventId]);
    } finally {
      stream.close();
    }
  });
});
