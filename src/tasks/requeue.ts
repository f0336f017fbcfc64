import type { Queryable } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskRow } from './rows.js';

/**
 * Run a failed or canceled task again (the dead-letter "retry" button): a fresh set of
 * attempts and a fresh fair-queuing tag, as if just submitted. Its old error is kept in the
 * event history, not on the task.
 */
const requeueSql = (ownerCondition: string) => `
WITH target AS (
  SELECT id, provider, user_id FROM tasks
  WHERE id = $1 ${ownerCondition} AND status IN ('failed', 'canceled') FOR UPDATE
), tag AS (
  INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
  SELECT target.provider, target.user_id,
         coalesce((SELECT vclock FROM provider_clocks p WHERE p.provider = target.provider), 0) + 1
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

/** The owner's retry (POST /v1/tasks/:id/retry): another user's task matches no row. */
const REQUEUE = requeueSql('AND user_id = $2');
/** An admin's retry of any user's task (the dead letters), otherwise the same. */
const REQUEUE_ANY_OWNER = requeueSql('');

/**
 * Requeue one task of any owner, without hints: the caller (a batch in a transaction) sends
 * them after its commit, since a worker woken before the commit would find nothing.
 */
export async function requeueAnyOwnersTask(db: Queryable, taskId: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>({ name: 'easel_requeue_any', text: REQUEUE_ANY_OWNER, values: [taskId] });
  return rows[0];
}

export async function requeueTask(
  db: Queryable,
  hints: Hints,
  userId: string,
  taskId: string,
): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>({ name: 'easel_requeue', text: REQUEUE, values: [taskId, userId] });
  const task = rows[0];
  if (task) {
    hints.taskReady(task.provider);
    hints.taskEvents();
  }
  return task;
}
