import { addSample, markThenDelete, SAMPLE, type GcRun } from './run.js';

/**
 * Uploads older than `days` ($1) that no task names as its input. An upload a task still runs
 * on (or ran on) stays until task retention deletes that task; the next run then takes it.
 */
const UNUSED_OLD = `FROM uploads u WHERE u.created_at < now() - make_interval(days => $1)
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.input_image IS NOT NULL
                    AND t.input_image ->> 'storage_key' = u.storage_key)`;

/** Input uploads follow the image retention: old, unused uploads go with their objects. */
export async function deleteUnusedUploads(run: GcRun, days: number): Promise<void> {
  if (days <= 0) return;
  if (run.dryRun) {
    const { rows } = await run.pool.query<{ total: string }>(`SELECT count(*) AS total ${UNUSED_OLD}`, [days]);
    run.report.uploads_deleted = Number(rows[0]!.total);
    const sample = await run.pool.query<{ id: string }>(`SELECT u.id ${UNUSED_OLD} ORDER BY u.created_at LIMIT $2`, [
      days,
      SAMPLE,
    ]);
    addSample(
      run.report.sample.uploads,
      sample.rows.map((row) => row.id),
    );
    return;
  }
  for (;;) {
    let done = 0;
    await markThenDelete(run, async (client) => {
      const { rows } = await client.query<{ id: string; storage_key: string }>(
        `DELETE FROM uploads WHERE id IN (
           SELECT u.id ${UNUSED_OLD} ORDER BY u.created_at LIMIT $2 FOR UPDATE OF u SKIP LOCKED)
         RETURNING id, storage_key`,
        [days, run.batchSize],
      );
      done = rows.length;
      addSample(
        run.report.sample.uploads,
        rows.map((row) => row.id),
      );
      return rows.map((row) => row.storage_key);
    });
    run.report.uploads_deleted += done;
    if (done < run.batchSize) return;
  }
}
