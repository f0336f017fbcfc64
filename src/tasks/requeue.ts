import type { Queryable } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskRow } from './rows.js';
import type { TaskOwner } from './queries.js';

/**
 * Run a failed or canceled task again (the dead-letter "retry" button): a fresh set of
 * attempts and a fresh fair-queuing tag, as if just submitted. Its old error is kept in the
 * event history, not on the task.
 */
const REQUEUE = `
WITH target AS (
  SELECT id, provider, user_id FROM tasks
  WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND status IN ('failed', 'canceled') FOR UPDATE
), tag AS (
  -- The owner's fair-queuing clock, also when an admin retries someone else's task.
  INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
  SELECT target.provider, target.user_id, coalesce((SELECT vclock FROM provider_clocks p WHERE p.provider = target.provider), 0) + 1
  FROM target
  ON CONFLICT (provider, user_id) DO UPDATE SET last_vtime = greatest(uc.last_vtime + 1, EXCLUDED.last_vtime)
  RETURNING last_vtime
), t AS (
  UPDATE tasks t SET status = 'queued', attempt = 0, rescues = 0, error = NULL, stage = NULL, progress = 0,
                     vtime = (SELECT last_vtime FROM tag), run_after = now(), worker_id = NULL, lease_token = NULL,
                     provider_ref = NULL, cancel_requested_at = NULL, started_at = NULL, finished_at = NULL,
                     predict_time = NULL, updated_at = now()
  FROM target WHERE t.id = target.id
  RETURNING t.*
), event AS (${insertEventsSql('t', sqlLiteral(TaskEventType.queued))})
SELECT * FROM t`;

export async function requeueTask(
  db: Queryable,
  hints: Hints,
  owner: TaskOwner,
  taskId: string,
): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>({ name: 'easel_requeue', text: REQUEUE, values: [taskId, owner] });
  const task = rows[0];
  if (task) {
    hints.taskReady(task.provider);
    hints.taskEvents();
  }
  return task;
}
