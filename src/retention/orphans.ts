import type { Queryable } from '../db/pool.js';
import type { StoredObject } from '../storage/storage.js';
import { MANAGED_PREFIXES, recordingKey } from './keys.js';
import { addSample, type GcRun } from './run.js';

/**
 * Objects no row records, older than the grace period: bytes of a crashed attempt, a failed
 * upload, a purge whose delete failed. Young objects are skipped whatever they are, because
 * images and uploads are recorded only after their bytes are written: an object being written
 * right now is not recorded yet and must not be taken for an orphan.
 *
 * An expired image's row does not record its object any more (its bytes should be gone), so an
 * object left under it is an orphan too.
 */
export async function sweepOrphans(run: GcRun, graceHours: number): Promise<void> {
  const cutoff = Date.now() - graceHours * 3600 * 1000;
  for (const prefix of MANAGED_PREFIXES) {
    let batch: StoredObject[] = [];
    for await (const object of run.storage.list(prefix)) {
      run.signal?.throwIfAborted();
      if (object.modifiedAt.getTime() >= cutoff) continue;
      batch.push(object);
      if (batch.length >= run.batchSize) {
        await removeUnrecorded(run, batch);
        batch = [];
      }
    }
    if (batch.length > 0) await removeUnrecorded(run, batch);
  }
}

async function removeUnrecorded(run: GcRun, objects: StoredObject[]): Promise<void> {
  const recorded = await recordedKeys(
    run.pool,
    objects.map((object) => recordingKey(object.key)),
  );
  const orphans = objects.map((object) => object.key).filter((key) => !recorded.has(recordingKey(key)));
  addSample(run.report.sample.orphans, orphans);
  run.report.orphans_deleted += orphans.length;
  if (run.dryRun) return;
  for (const key of orphans) {
    try {
      await run.storage.delete(key);
      run.report.objects_deleted += 1;
    } catch (error) {
      // Nothing records it, so nothing is lost: the next run finds it again.
      run.report.delete_failures += 1;
      run.onStorageError(key, error);
    }
  }
}

/**
 * Which of these keys a row records: a live image, an upload, a task's input, or a key already
 * queued for deletion (the outbox deletes those itself).
 */
async function recordedKeys(db: Queryable, keys: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ key: string }>(
    `SELECT k.key FROM unnest($1::text[]) AS k(key)
     WHERE EXISTS (SELECT 1 FROM task_images i WHERE i.storage_key = k.key AND i.expired_at IS NULL)
        OR EXISTS (SELECT 1 FROM uploads u WHERE u.storage_key = k.key)
        OR EXISTS (SELECT 1 FROM tasks t WHERE t.input_image IS NOT NULL AND t.input_image ->> 'storage_key' = k.key)
        OR EXISTS (SELECT 1 FROM storage_deletions d WHERE d.key = k.key)`,
    [keys],
  );
  return new Set(rows.map((row) => row.key));
}
