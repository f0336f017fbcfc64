import type { Queryable } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskOwner } from './queries.js';

/**
 * One UPDATE over both unfinished states: a queued task ends `canceled` at once; a running one
 * gets `cancel_requested_at` and a hint to its worker, which aborts the adapter and writes the
 * final `canceled` itself (fenced by its lease); the heartbeat repeats the request if the
 * NOTIFY is lost, and a running task sent back to the queue with the request set (a retry, a
 * release, a rescue) ends `canceled` instead.
 *
 * Why one statement over `status IN ('queued', 'running')`: when a claim, retry or release
 * changes the row while this waits for its lock, READ COMMITTED re-checks the WHERE against the
 * new row and the SET applies to it, so the cancel always lands on an unfinished task. (Two
 * UPDATEs, one per status, share one snapshot: the one that saw the old status finds the row
 * changed, and the other never saw the new status, so the cancel was dropped.)
 */
const CANCEL = `
WITH t AS (
  UPDATE tasks SET
    status = CASE WHEN status = 'queued' THEN 'canceled' ELSE status END,
    stage = CASE WHEN status = 'queued' THEN NULL ELSE stage END,
    finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
    cancel_requested_at = coalesce(cancel_requested_at, now()),
    updated_at = now()
  WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND status IN ('queued', 'running')
  RETURNING *
), event AS (
  ${insertEventsSql(
    't',
    `CASE t.status WHEN 'canceled' THEN ${sqlLiteral(TaskEventType.canceled)} ELSE ${sqlLiteral(TaskEventType.cancelRequested)} END`,
  )}
)
SELECT CASE status WHEN 'canceled' THEN 'canceled' ELSE 'cancel_requested' END AS outcome FROM t`;

export type CancelOutcome = 'canceled' | 'cancel_requested' | 'already_finished' | 'not_found';

/** `owner`: the caller's user id, or null for an admin acting on any user's task. */
export async function cancelTask(
  db: Queryable,
  hints: Hints,
  owner: TaskOwner,
  taskId: string,
): Promise<CancelOutcome> {
  const { rows } = await db.query<{ outcome: CancelOutcome }>({
    name: 'easel_cancel',
    text: CANCEL,
    values: [taskId, owner],
  });
  const outcome = rows[0]?.outcome;
  if (outcome) {
    hints.taskEvents();
    if (outcome === 'cancel_requested') hints.taskCancel(taskId);
    return outcome;
  }
  const { rows: existing } = await db.query(
    'SELECT 1 FROM tasks WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)',
    [taskId, owner],
  );
  return existing.length > 0 ? 'already_finished' : 'not_found';
}
