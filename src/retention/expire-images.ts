import { imageObjectKeys } from '../images/thumbnail.js';
import { addSample, markThenDelete, SAMPLE, type GcRun } from './run.js';

const FINISHED = `('succeeded', 'failed', 'canceled')`;

/** Images of finished tasks recorded more than `days` ago and not yet expired. */
const EXPIRABLE = `
  FROM task_images i JOIN tasks t ON t.id = i.task_id
  WHERE i.expired_at IS NULL AND i.created_at < now() - make_interval(days => $1)
    AND t.status IN ${FINISHED}`;

/**
 * Expire images older than the image retention: mark the rows (expired_at) and queue their
 * objects (image and thumbnail) in one transaction, then delete the objects. The row stays, so
 * the task still says what it made and its image URLs answer 410 instead of 404.
 */
export async function expireOldImages(run: GcRun, days: number): Promise<void> {
  if (days <= 0) return;
  if (run.dryRun) {
    const { rows } = await run.pool.query<{ total: string }>(`SELECT count(*) AS total ${EXPIRABLE}`, [days]);
    run.report.images_expired = Number(rows[0]!.total);
    const sample = await run.pool.query<{ name: string }>(
      `SELECT i.task_id || '/' || i.index AS name ${EXPIRABLE} ORDER BY i.created_at LIMIT $2`,
      [days, SAMPLE],
    );
    addSample(
      run.report.sample.images,
      sample.rows.map((row) => row.name),
    );
    return;
  }
  for (;;) {
    let marked = 0;
    await markThenDelete(run, async (client) => {
      // Rows another transaction holds (a dead-letter purge deleting them) are left to it.
      const { rows } = await client.query<{ task_id: string; index: number; storage_key: string }>(
        `WITH picked AS (
           SELECT i.task_id, i.index ${EXPIRABLE}
           ORDER BY i.created_at LIMIT $2 FOR UPDATE OF i SKIP LOCKED)
         UPDATE task_images i SET expired_at = now() FROM picked
         WHERE i.task_id = picked.task_id AND i.index = picked.index
         RETURNING i.task_id, i.index, i.storage_key`,
        [days, run.batchSize],
      );
      marked = rows.length;
      addSample(
        run.report.sample.images,
        rows.map((row) => `${row.task_id}/${row.index}`),
      );
      return rows.flatMap((row) => imageObjectKeys(row.storage_key));
    });
    run.report.images_expired += marked;
    if (marked < run.batchSize) return;
  }
}
