import type { Pool, Queryable } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { ACTIVE_STATUSES_SQL, withUserTaskLock } from './active-limit.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskOwner } from './queries.js';
import type { TaskRow } from './rows.js';

/**
 * A retry counts like a submit: not above the priority ceiling ($3), and not when the task's
 * owner already has $4 tasks queued or running. Run under the owner's task lock (active-limit.ts).
 */
const WITHIN_LIMITS = `
    AND priority <= $3
    AND (SELECT count(*) FROM (SELECT 1 FROM tasks mine WHERE mine.user_id = tasks.user_id
                                 AND mine.status IN ${ACTIVE_STATUSES_SQL} LIMIT $4) a) < $4`;

/**
 * Run a failed or canceled task again (the dead-letter "retry" button): a fresh set of
 * attempts and a fresh fair-queuing tag, as if just submitted. Its old error is kept in the
 * event history, not on the task. `$2` is the owner, or NULL for an admin acting on any task.
 */
const requeueSql = (withinLimits: boolean) => `
WITH target AS (
  SELECT id, provider, user_id FROM tasks
  WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND status IN ('failed', 'canceled')${withinLimits ? WITHIN_LIMITS : ''}
  FOR UPDATE
), tag AS (
  -- The owner's fair-queuing clock, also when an admin retries someone else's task.
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

const REQUEUE = requeueSql(false);
const REQUEUE_WITHIN_LIMITS = requeueSql(true);

export interface RequeueLimits {
  maxPriority: number;
  maxActiveTasks: number;
}

/**
 * The requeue alone, on a caller's client (in its transaction, under the owner's task lock when
 * `limits` are given); the caller sends the hints after its commit.
 */
export async function requeueTaskRow(
  db: Queryable,
  owner: TaskOwner,
  taskId: string,
  limits?: RequeueLimits,
): Promise<TaskRow | undefined> {
  const { rows } = limits
    ? await db.query<TaskRow>({
        name: 'easel_requeue_within_limits',
        text: REQUEUE_WITHIN_LIMITS,
        values: [taskId, owner, limits.maxPriority, limits.maxActiveTasks],
      })
    : await db.query<TaskRow>({ name: 'easel_requeue', text: REQUEUE, values: [taskId, owner] });
  return rows[0];
}

/**
 * Requeue one task of any owner, without hints: the caller (a batch in a transaction) sends
 * them after its commit, since a worker woken before the commit would find nothing.
 */
export const requeueAnyOwnersTask = (db: Queryable, taskId: string): Promise<TaskRow | undefined> =>
  requeueTaskRow(db, null, taskId);

/** Requeue and wake the workers; with `limits`, under the owner's task lock (`ownerId`). */
export async function requeueTask(
  db: Queryable,
  hints: Hints,
  owner: TaskOwner,
  taskId: string,
  limits?: RequeueLimits & { ownerId: string },
): Promise<TaskRow | undefined> {
  const task = limits
    ? await withUserTaskLock(db as Pool, limits.ownerId, (client) => requeueTaskRow(client, owner, taskId, limits))
    : await requeueTaskRow(db, owner, taskId);
  if (task) {
    hints.taskReady(task.provider);
    hints.taskEvents();
  }
  return task;
}
