import type { Pool, Queryable } from '../db/pool.js';
import type { Storage } from '../storage/storage.js';

/**
 * The storage_deletions outbox (migration 0016). Keys are queued in the transaction that stops
 * recording them (an image marked expired, a task deleted), and a key leaves the queue only after
 * storage confirmed its delete. A gc killed between the two finds the queue on its next run and
 * finishes it; deleting a missing object is fine, so finishing twice is harmless.
 */
export async function queueDeletions(db: Queryable, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query('INSERT INTO storage_deletions (key) SELECT unnest($1::text[]) ON CONFLICT (key) DO NOTHING', [
    [...new Set(keys)],
  ]);
}

export interface DrainOutcome {
  deleted: number;
  failed: number;
}

/**
 * Delete these queued keys' objects, then dequeue the ones that went. A key whose delete failed
 * stays queued for the next run; the failure is reported, not thrown, so one bad object does not
 * stop gc.
 */
export async function deleteQueued(
  pool: Pool,
  storage: Storage,
  keys: readonly string[],
  onError: (key: string, error: unknown) => void,
): Promise<DrainOutcome> {
  const done: string[] = [];
  let failed = 0;
  for (const key of keys) {
    try {
      await storage.delete(key);
      done.push(key);
    } catch (error) {
      failed += 1;
      onError(key, error);
    }
  }
  if (done.length > 0) await pool.query('DELETE FROM storage_deletions WHERE key = ANY($1::text[])', [done]);
  return { deleted: done.length, failed };
}

/** Keys left queued by an earlier run, a batch at a time in key order (keyset from `after`). */
export async function queuedKeys(db: Queryable, after: string, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>(
    'SELECT key FROM storage_deletions WHERE key > $1 ORDER BY key LIMIT $2',
    [after, limit],
  );
  return rows.map((row) => row.key);
}
