import type { PoolClient } from '../db/pool.js';
import { imageObjectKeys } from '../images/thumbnail.js';
import { addSample, markThenDelete, SAMPLE, type GcRun } from './run.js';

/** Finished more than `days` ago ($1). */
const OLD_FINISHED = `t.finished_at < now() - make_interval(days => $1) AND t.status IN ('succeeded', 'failed', 'canceled')`;

/**
 * Money records that refer to the task. The ledger is append-only (a trigger refuses deletes),
 * and a hold or an external charge explains a ledger entry or a pending charge, so a task any of
 * them names is never deleted.
 */
const HAS_MONEY = `(EXISTS (SELECT 1 FROM credit_holds h WHERE h.task_id = t.id)
  OR EXISTS (SELECT 1 FROM credit_ledger l WHERE l.task_id = t.id)
  OR EXISTS (SELECT 1 FROM external_charges c WHERE c.task_id = t.id))`;

/** A billed task still holding something gc trims: a live image or events. */
const UNTRIMMED = `(EXISTS (SELECT 1 FROM task_images i WHERE i.task_id = t.id AND i.expired_at IS NULL)
  OR EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = t.id))`;

const DELETABLE = `FROM tasks t WHERE ${OLD_FINISHED} AND NOT ${HAS_MONEY}`;
const TRIMMABLE = `FROM tasks t WHERE ${OLD_FINISHED} AND ${HAS_MONEY} AND ${UNTRIMMED}`;

/**
 * Task retention. A finished task older than `days` is deleted with its events, image rows and
 * objects, and its input image unless an upload or another task still uses that object.
 *
 * A task with money records is kept as the ledger's reference (id, owner, provider, model,
 * status, times), but trimmed like the others: its images expire and its events go.
 */
export async function deleteOldTasks(run: GcRun, days: number): Promise<void> {
  if (days <= 0) return;
  if (run.dryRun) {
    run.report.tasks_deleted = await count(run, DELETABLE, days);
    run.report.tasks_kept_for_billing = await count(run, TRIMMABLE, days);
    const { rows } = await run.pool.query<{ id: string }>(`SELECT t.id ${DELETABLE} ORDER BY t.finished_at LIMIT $2`, [
      days,
      SAMPLE,
    ]);
    addSample(
      run.report.sample.tasks,
      rows.map((row) => row.id),
    );
    return;
  }
  for (;;) {
    let done = 0;
    await markThenDelete(run, async (client) => {
      const ids = await lockBatch(client, DELETABLE, days, run.batchSize);
      done = ids.length;
      addSample(run.report.sample.tasks, ids);
      return ids.length > 0 ? deleteTasks(client, ids) : [];
    });
    run.report.tasks_deleted += done;
    if (done < run.batchSize) break;
  }
  for (;;) {
    let done = 0;
    await markThenDelete(run, async (client) => {
      const ids = await lockBatch(client, TRIMMABLE, days, run.batchSize);
      done = ids.length;
      return ids.length > 0 ? trimTasks(client, ids) : [];
    });
    run.report.tasks_kept_for_billing += done;
    if (done < run.batchSize) return;
  }
}

async function count(run: GcRun, from: string, days: number): Promise<number> {
  const { rows } = await run.pool.query<{ total: string }>(`SELECT count(*) AS total ${from}`, [days]);
  return Number(rows[0]!.total);
}

/** Oldest first; a task another transaction holds (a retry, a purge) is left for next time. */
async function lockBatch(client: PoolClient, from: string, days: number, limit: number): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT t.id ${from} ORDER BY t.finished_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED`,
    [days, limit],
  );
  return rows.map((row) => row.id);
}

/** Delete the rows; returns the keys of the objects they recorded, for the outbox. */
async function deleteTasks(client: PoolClient, ids: string[]): Promise<string[]> {
  // An expired image's objects are already gone (or queued): only live ones are queued here.
  const { rows: images } = await client.query<{ storage_key: string; expired_at: Date | null }>(
    `DELETE FROM task_images WHERE task_id = ANY($1::uuid[]) RETURNING storage_key, expired_at`,
    [ids],
  );
  const { rows: inputs } = await client.query<{ key: string }>(
    `SELECT DISTINCT t.input_image ->> 'storage_key' AS key FROM tasks t
     WHERE t.id = ANY($1::uuid[]) AND t.input_image IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.storage_key = t.input_image ->> 'storage_key')
       AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.input_image ->> 'storage_key' = t.input_image ->> 'storage_key'
                         AND o.input_image IS NOT NULL AND o.id <> ALL($1::uuid[]))`,
    [ids],
  );
  await client.query('DELETE FROM task_events WHERE task_id = ANY($1::uuid[])', [ids]);
  await client.query('DELETE FROM tasks WHERE id = ANY($1::uuid[])', [ids]);
  return [
    ...images.filter((image) => image.expired_at === null).flatMap((image) => imageObjectKeys(image.storage_key)),
    ...inputs.map((row) => row.key),
  ];
}

/** Expire the images and drop the events of billed tasks; the task rows stay. */
async function trimTasks(client: PoolClient, ids: string[]): Promise<string[]> {
  const { rows } = await client.query<{ storage_key: string }>(
    `UPDATE task_images SET expired_at = now() WHERE task_id = ANY($1::uuid[]) AND expired_at IS NULL
     RETURNING storage_key`,
    [ids],
  );
  await client.query('DELETE FROM task_events WHERE task_id = ANY($1::uuid[])', [ids]);
  return rows.flatMap((row) => imageObjectKeys(row.storage_key));
}
