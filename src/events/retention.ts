import type { Pool, Queryable } from '../db/pool.js';
import { compareCursors, type EventCursor } from './cursor.js';

/** Any constant works; it only has to be the same in every Easel process. */
const PRUNE_LOCK = 7_415_004;

export interface PruneOptions {
  /** Events older than this are deleted; 0 keeps events forever. */
  retentionHours: number;
  /** Rows deleted per transaction: bounds lock time and WAL per step. */
  batchSize?: number;
  /** Transactions per call: bounds how long one maintenance tick spends here. */
  maxBatches?: number;
}

/**
 * Delete the head of the event log while its events are past retention, in bounded batches,
 * and move the low-water mark to the last event deleted. Pruning follows log order and stops at
 * the first event still inside retention, so "everything after the mark is kept" holds and a
 * resume point after the mark never has a gap. Only events below the read horizon are touched,
 * so no event can later commit at or before the mark.
 *
 * Each batch runs under a transaction-scoped try-lock: when another process is pruning, this one
 * returns at once instead of queueing behind it. Returns how many events were deleted.
 */
export async function pruneExpiredEvents(pool: Pool, options: PruneOptions): Promise<number> {
  const { retentionHours, batchSize = 2000, maxBatches = 10 } = options;
  if (retentionHours <= 0) return 0;
  let deleted = 0;
  for (let batch = 0; batch < maxBatches; batch++) {
    const client = await pool.connect();
    let count = 0;
    try {
      await client.query('BEGIN');
      const { rows: lock } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [
        PRUNE_LOCK,
      ]);
      if (lock[0]?.locked) {
        const { rows } = await client.query<{ count: number }>({
          name: 'easel_prune_events',
          text: `WITH head AS (
                   SELECT page.id, page.tx_id,
                          bool_and(page.created_at < now() - make_interval(hours => $1)) OVER (ORDER BY page.tx_id, page.id) AS expired
                   FROM (SELECT e.id, e.tx_id, e.created_at FROM task_events e
                         WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
                         ORDER BY e.tx_id, e.id LIMIT $2) page
                 ), deleted AS (
                   DELETE FROM task_events e USING head WHERE head.expired AND e.id = head.id
                   RETURNING e.tx_id, e.id
                 ), marked AS (
                   UPDATE task_event_retention r
                   SET pruned_through_tx = last.tx_id, pruned_through_id = last.id, pruned_at = now()
                   FROM (SELECT d.tx_id, d.id FROM deleted d ORDER BY d.tx_id DESC, d.id DESC LIMIT 1) last
                   WHERE (last.tx_id, last.id) > (r.pruned_through_tx, r.pruned_through_id)
                   RETURNING 1
                 )
                 SELECT count(*)::int AS count FROM deleted`,
          values: [retentionHours, batchSize],
        });
        count = rows[0]?.count ?? 0;
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    deleted += count;
    if (count < batchSize) break;
  }
  return deleted;
}

export type ResumePointCheck = 'kept' | 'expired' | 'unknown';

/**
 * Whether the events after `cursor` are all still kept ('kept'), some may have been pruned
 * ('expired'), or the cursor names a transaction that has not happened yet, so this server
 * never sent it ('unknown').
 */
export async function checkResumePoint(db: Queryable, cursor: EventCursor): Promise<ResumePointCheck> {
  const { rows } = await db.query<{ tx: string; id: number; next_tx: string }>({
    name: 'easel_event_retention',
    text: `SELECT r.pruned_through_tx::text AS tx, r.pruned_through_id AS id,
                  pg_snapshot_xmax(pg_current_snapshot())::text AS next_tx
           FROM task_event_retention r`,
  });
  const row = rows[0];
  if (!row) return 'kept';
  if (BigInt(cursor.txId) >= BigInt(row.next_tx)) return 'unknown';
  return compareCursors(cursor, { txId: row.tx, id: row.id }) < 0 ? 'expired' : 'kept';
}
