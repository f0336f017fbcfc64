import type { Hints } from '../db/notifier.js';
import type { Pool } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import { insertEventsSql, sqlLiteral } from './events.js';

const BATCH = 500;

/**
 * Cancel one batch of queued tasks in id order above `after` and up to `upTo`, each with its
 * `task:canceled` event in the same statement (as src/tasks/cancel.ts does for one task).
 *
 * The rows are locked in id order and waited for, not skipped: a claim that holds one ends with
 * it running (the re-checked `status = 'queued'` then leaves it alone), anything else with it
 * still queued, and it is canceled. Two admins clearing at once lock in the same order, so they
 * cannot deadlock; the second finds the rows canceled and passes on.
 */
const CANCEL_QUEUED_BATCH = (byProvider: boolean) => `
WITH target AS (
  SELECT id FROM tasks
  WHERE status = 'queued' ${byProvider ? 'AND provider = $4' : ''} AND id > $1 AND id <= $2
  ORDER BY id LIMIT $3 FOR UPDATE
), t AS (
  UPDATE tasks SET status = 'canceled', stage = NULL, finished_at = now(),
                   cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
  FROM target WHERE tasks.id = target.id AND tasks.status = 'queued'
  RETURNING tasks.*
), event AS (${insertEventsSql('t', sqlLiteral(TaskEventType.canceled))})
SELECT (SELECT max(id::text) FROM target) AS last, (SELECT count(*)::int FROM t) AS canceled`;

/**
 * Cancel every task queued when the call starts (optionally of one provider); running tasks are
 * untouched. Canceled, not deleted: each stays in its owner's history with its event. Tasks
 * queued after the start are left for the next call, so the loop ends however fast submits come.
 */
export async function clearQueue(pool: Pool, hints: Hints, provider?: string): Promise<number> {
  const byProvider = provider !== undefined;
  const { rows: newest } = await pool.query<{ id: string }>(
    `SELECT id FROM tasks WHERE status = 'queued' ${byProvider ? 'AND provider = $1' : ''} ORDER BY id DESC LIMIT 1`,
    byProvider ? [provider] : [],
  );
  const upTo = newest[0]?.id;
  if (!upTo) return 0;
  let after = '00000000-0000-0000-0000-000000000000';
  let canceled = 0;
  for (;;) {
    const { rows } = await pool.query<{ last: string | null; canceled: number }>(
      CANCEL_QUEUED_BATCH(byProvider),
      byProvider ? [after, upTo, BATCH, provider] : [after, upTo, BATCH],
    );
    const batch = rows[0]!;
    canceled += batch.canceled;
    if (batch.canceled > 0) hints.taskEvents();
    if (batch.last === null) return canceled;
    after = batch.last;
  }
}
