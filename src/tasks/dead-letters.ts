import type { Hints } from '../db/notifier.js';
import type { Pool, PoolClient } from '../db/pool.js';
import type { Storage } from '../storage/storage.js';
import { deleteQueued, queueDeletions } from '../retention/deletions.js';
import { anyTasksStatement, type AnyTaskFilter } from './queries.js';
import { requeueAnyOwnersTask } from './requeue.js';
import type { TaskRow } from './rows.js';
import { imageObjectKeys, thumbnailKey } from '../images/thumbnail.js';

/**
 * Dead letters are failed tasks: attempts used up, or a failure no retry could fix. An admin
 * retries them (back to the queue, like POST /v1/tasks/:id/retry) or purges them (rows and
 * stored images gone).
 *
 * Both work in batches of BATCH tasks, one transaction each, so no call holds many row locks or
 * one long transaction. Rows are locked before they are touched: by filter, a batch skips rows
 * another transaction holds (another admin's batch takes those), so two admins at once split the
 * work and neither waits or fails; by ids, a batch waits for them, then finds them no longer
 * failed and reports them as not done.
 */
const BATCH = 100;

/** What to act on: these ids, or every dead letter matching the filter (up to `max`). */
export type DeadLetterSelection =
  { ids: string[] } | { filter: Omit<AnyTaskFilter, 'status' | 'limit' | 'lock' | 'before'>; max: number };

export interface DeadLetterOutcome {
  /** The tasks acted on, newest first within each batch. */
  ids: string[];
  /** By ids: those that were not a dead letter (not failed, not found, or taken meanwhile). */
  skipped: string[];
  /** By filter: true when the call stopped at `max`, so more may match; call again. */
  more: boolean;
}

/**
 * Run `work` on each locked batch of dead letters in its own transaction. By filter, the walk
 * goes down the ids (keyset), so a task retried here that fails again at once is not met twice.
 */
async function inBatches(
  pool: Pool,
  selection: DeadLetterSelection,
  work: (client: PoolClient, tasks: TaskRow[]) => Promise<string[] | void>,
  onCommit: (returned: string[]) => Promise<void> | void = () => {},
): Promise<DeadLetterOutcome> {
  const done: string[] = [];
  const runBatch = async (statement: { text: string; values: unknown[] }): Promise<TaskRow[]> => {
    const client = await pool.connect();
    let rows: TaskRow[];
    let returned: string[] | void;
    try {
      await client.query('BEGIN');
      ({ rows } = await client.query<TaskRow>(statement));
      returned = rows.length > 0 ? await work(client, rows) : undefined;
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    done.push(...rows.map((row) => row.id));
    // What `work` returned is handed on only once its transaction has committed.
    if (returned) await onCommit(returned);
    return rows;
  };

  if ('ids' in selection) {
    const unique = [...new Set(selection.ids.map((id) => id.toLowerCase()))];
    for (let at = 0; at < unique.length; at += BATCH) {
      await runBatch({
        text: `SELECT * FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'failed' ORDER BY id DESC FOR UPDATE`,
        values: [unique.slice(at, at + BATCH)],
      });
    }
    const acted = new Set(done);
    return { ids: done, skipped: unique.filter((id) => !acted.has(id)), more: false };
  }

  let before: string | undefined;
  while (done.length < selection.max) {
    const limit = Math.min(BATCH, selection.max - done.length);
    const rows = await runBatch(
      anyTasksStatement({ ...selection.filter, status: 'failed', before, limit, lock: 'skip' }),
    );
    if (rows.length < limit) return { ids: done, skipped: [], more: false };
    before = rows.at(-1)!.id;
  }
  return { ids: done, skipped: [], more: true };
}

/** Back to the queue with fresh attempts; each gets its `task:queued` event with the change. */
export async function retryDeadLetters(
  pool: Pool,
  hints: Hints,
  selection: DeadLetterSelection,
): Promise<DeadLetterOutcome> {
  // Providers of committed batches only: a worker woken for a batch that rolled back finds nothing.
  const woken = new Set<string>();
  try {
    const outcome = await inBatches(
      pool,
      selection,
      async (client, tasks) => {
        for (const task of tasks) {
          // Locked and failed in this transaction, so the requeue cannot miss it.
          await requeueAnyOwnersTask(client, task.id);
        }
        return [...new Set(tasks.map((task) => task.provider))];
      },
      (providers) => providers.forEach((provider) => woken.add(provider)),
    );
    return outcome;
  } finally {
    // After the commits, even when a later batch failed: those before it are queued.
    for (const provider of woken) hints.taskReady(provider);
    if (woken.size > 0) hints.taskEvents();
  }
}

export interface PurgeOutcome extends DeadLetterOutcome {
  /** Objects removed from storage: result images and inputs no upload still holds. */
  imagesDeleted: number;
}

/**
 * Delete dead letters: their rows, their result images' rows, then the stored bytes. Bytes go
 * after the commit, never leaving a row pointing at a missing file; their keys (with the images'
 * thumbnails) are queued for deletion in that commit (storage_deletions, docs/retention.md), so a
 * delete that fails or a process that dies here leaves them for the next `easel storage gc`.
 *
 * An img2img input is deleted only when no upload of the owner has the same key: an input taken
 * from an upload shares the upload's file, which the upload (and other tasks) still use.
 *
 * Events stay: the event log is append-only and pruned by age (EASEL_EVENT_RETENTION_HOURS), so
 * the history of a purged task ages out like any other.
 */
export async function purgeDeadLetters(
  pool: Pool,
  storage: Storage,
  selection: DeadLetterSelection,
  onStorageError: (key: string, error: unknown) => void,
): Promise<PurgeOutcome> {
  let imagesDeleted = 0;
  // Each batch's files go as soon as its rows are committed, so a later failure strands none.
  const deleteFiles = async (keys: string[]) => {
    const outcome = await deleteQueued(pool, storage, keys, onStorageError);
    imagesDeleted += outcome.deleted;
    // Result images' thumbnails (result keys are under tasks/) go too, uncounted and unreported:
    // one that fails stays queued for gc, and most images may have none.
    const thumbnails = keys.filter((key) => key.startsWith('tasks/')).map(thumbnailKey);
    await deleteQueued(pool, storage, thumbnails, () => {});
  };
  const outcome = await inBatches(
    pool,
    selection,
    async (client, tasks) => {
      const ids = tasks.map((task) => task.id);
      const { rows: images } = await client.query<{ storage_key: string; thumbnail_sha256: string | null }>(
        'DELETE FROM task_images WHERE task_id = ANY($1::uuid[]) RETURNING storage_key, thumbnail_sha256',
        [ids],
      );
      const { rows: inputs } = await client.query<{ storage_key: string }>(
        `SELECT t.input_image->>'storage_key' AS storage_key FROM tasks t
         WHERE t.id = ANY($1::uuid[]) AND t.input_image IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM uploads u
                           WHERE u.user_id = t.user_id AND u.storage_key = t.input_image->>'storage_key')`,
        [ids],
      );
      await client.query(`DELETE FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'failed'`, [ids]);
      const imageKeys = images.map((row) => row.storage_key);
      await queueDeletions(client, [...imageKeys.flatMap(imageObjectKeys), ...inputs.map((row) => row.storage_key)]);
      return [...imageKeys, ...inputs.map((row) => row.storage_key)];
    },
    deleteFiles,
  );
  return { ...outcome, imagesDeleted };
}
