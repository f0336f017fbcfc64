import type { Pool, Queryable } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { ACTIVE_STATUSES_SQL, withUserTaskLock } from './active-limit.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskRow } from './rows.js';

/**
 * Run a failed or canceled task again (the dead-letter "retry" button): a fresh set of
 * attempts and a fresh fair-queuing tag, as if just submitted. Its old error is kept in the
 * event history, not on the task.
 */
const requeueSql = (ownerCondition: string, withinLimits: boolean) => `
WITH target AS (
  SELECT id, provider, user_id FROM tasks
  WHERE id = $1 ${ownerCondition} AND status IN ('failed', 'canceled')${withinLimits ? WITHIN_LIMITS : ''}
  FOR UPDATE
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

/**
 * A retry counts like a submit: not above the user's priority ceiling ($3), and not when the
 * user already has $4 tasks queued or running. Run under the user's task lock (active-limit.ts).
 */
const WITHIN_LIMITS = `
    AND priority <= $3
    AND (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE user_id = $2 AND status IN ${ACTIVE_STATUSES_SQL} LIMIT $4) a) < $4`;
/** The owner's retry (POST /v1/tasks/:id/retry): another user's task matches no row. */
const REQUEUE = requeueSql('AND user_id = $2', false);
const REQUEUE_WITHIN_LIMITS = requeueSql('AND user_id = $2', true);
/** An admin's retry of any user's task (the dead letters), otherwise the same. */
const REQUEUE_ANY_OWNER = requeueSql('', false);

/**
 * Requeue one task of any owner, without hints: the caller (a batch in a transaction) sends
 * them after its commit, since a worker woken before the commit would find nothing.
 */
export async function requeueAnyOwnersTask(db: Queryable, taskId: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>({ name: 'easel_requeue_any', text: REQUEUE_ANY_OWNER, values: [taskId] });
  return rows[0];
}

export interface RequeueLimits {
  maxPriority: number;
  maxActiveTasks: number;
}

/**
 * The requeue alone, on a caller's client (in its transaction, under the user's task lock when
 * `limits` are given); the caller sends the hints after its commit.
 */
export async function requeueTaskRow(
  db: Queryable,
  userId: string,
  taskId: string,
  limits?: RequeueLimits,
): Promise<TaskRow | undefined> {
  const { rows } = limits
    ? await db.query<TaskRow>({
        name: 'easel_requeue_within_limits',
        text: REQUEUE_WITHIN_LIMITS,
        values: [taskId, userId, limits.maxPriority, limits.maxActiveTasks],
      })
    : await db.query<TaskRow>({ name: 'easel_requeue', text: REQUEUE, values: [taskId, userId] });
  return rows[0];
}

export async function requeueTask(
  db: Queryable,
  hints: Hints,
  userId: string,
  taskId: string,
  /** With limits, undefined also when the task's priority or the user's active tasks are over them. */
  limits?: RequeueLimits,
): Promise<TaskRow | undefined> {
  const task = limits
    ? await withUserTaskLock(db as Pool, userId, (client) => requeueTaskRow(client, userId, taskId, limits))
    : await requeueTaskRow(db, userId, taskId);
  if (task) {
    hints.taskReady(task.provider);
    hints.taskEvents();
  }
  return task;
}
