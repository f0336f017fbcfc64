import type { Queryable } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql, sqlLiteral } from './events.js';

/**
 * A queued task is canceled by this one statement; whichever of it and a claim locks the row
 * first wins, so there is no window where both succeed. A running task only gets
 * `cancel_requested_at` and a hint to its worker, which aborts the adapter and writes the
 * final `canceled` itself (fenced by its lease); the heartbeat repeats the request if the
 * NOTIFY is lost.
 */
const CANCEL = `
WITH queued AS (
  UPDATE tasks SET status = 'canceled', stage = NULL, finished_at = now(), updated_at = now(),
                   cancel_requested_at = now()
  WHERE id = $1 AND user_id = $2 AND status = 'queued'
  RETURNING *
), running AS (
  UPDATE tasks SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
  WHERE id = $1 AND user_id = $2 AND status = 'running'
  RETURNING *
), queued_event AS (
  ${insertEventsSql('queued', sqlLiteral(TaskEventType.canceled))}
), running_event AS (
  ${insertEventsSql('running', sqlLiteral(TaskEventType.cancelRequested))}
)
SELECT 'canceled' AS outcome FROM queued
UNION ALL
SELECT 'cancel_requested' FROM running`;

export type CancelOutcome = 'canceled' | 'cancel_requested' | 'already_finished' | 'not_found';

export async function cancelTask(db: Queryable, hints: Hints, userId: string, taskId: string): Promise<CancelOutcome> {
  const { rows } = await db.query<{ outcome: CancelOutcome }>({
    name: 'easel_cancel',
    text: CANCEL,
    values: [taskId, userId],
  });
  const outcome = rows[0]?.outcome;
  if (outcome) {
    hints.taskEvents();
    if (outcome === 'cancel_requested') hints.taskCancel(taskId);
    return outcome;
  }
  const { rows: existing } = await db.query('SELECT 1 FROM tasks WHERE id = $1 AND user_id = $2', [taskId, userId]);
  return existing.length > 0 ? 'already_finished' : 'not_found';
}
