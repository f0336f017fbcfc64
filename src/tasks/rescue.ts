import type { Queryable } from '../db/pool.js';
import { TaskErrorCodes } from '../domain/errors.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql } from './events.js';

/** A task rescued this many times fails instead of taking down one worker after another. */
export const MAX_RESCUES = 3;

/**
 * Running tasks whose worker has gone silent (or vanished), or whose attempt passed the hard
 * timeout, go back to the queue with their original fair-queuing tag, so they run next. The
 * lost attempt still counts; past max attempts, or past MAX_RESCUES, the task fails; a task
 * whose cancel was requested ends canceled. Any process may run this at any time: SKIP LOCKED
 * and the status guard make concurrent rescuers harmless.
 */
const RESCUE = `
WITH lost AS (
  SELECT t.id,
         CASE WHEN w.id IS NULL OR w.last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
              THEN '${TaskErrorCodes.WORKER_LOST}' ELSE '${TaskErrorCodes.ATTEMPT_TIMED_OUT}' END AS reason
  FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
  WHERE t.status = 'running'
    AND (w.id IS NULL
         OR w.last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
         OR t.started_at < now() - make_interval(secs => $2::double precision / 1000))
  FOR UPDATE OF t SKIP LOCKED
), t AS (
  UPDATE tasks t SET
    status = CASE WHEN t.cancel_requested_at IS NOT NULL THEN 'canceled'
                  WHEN t.attempt >= t.max_attempts OR t.rescues + 1 >= $3 THEN 'failed'
                  ELSE 'queued' END,
    error = CASE WHEN t.cancel_requested_at IS NOT NULL THEN NULL
                 ELSE jsonb_build_object('code', lost.reason, 'message',
                   CASE lost.reason WHEN '${TaskErrorCodes.WORKER_LOST}'
                        THEN 'the worker running this attempt stopped responding'
                        ELSE 'the attempt ran past the task timeout' END) END,
    rescues = t.rescues + 1, worker_id = NULL, lease_token = NULL, stage = NULL, progress = 0,
    run_after = now(), updated_at = now(),
    finished_at = CASE WHEN t.cancel_requested_at IS NOT NULL OR t.attempt >= t.max_attempts OR t.rescues + 1 >= $3
                       THEN now() END
  FROM lost WHERE t.id = lost.id
  RETURNING t.*
), event AS (
  ${insertEventsSql('t', `CASE t.status WHEN 'queued' THEN 'task:retrying' ELSE 'task:' || t.status END`)}
)
SELECT t.id, t.status, t.provider FROM t`;

export async function rescueLostTasks(
  db: Queryable,
  hints: Hints,
  limits: { deadAfterMs: number; taskTimeoutMs: number },
): Promise<Array<{ id: string; status: string; provider: string }>> {
  const { rows } = await db.query<{ id: string; status: string; provider: string }>({
    name: 'easel_rescue',
    text: RESCUE,
    values: [limits.deadAfterMs, limits.taskTimeoutMs, MAX_RESCUES],
  });
  for (const row of rows) hints.taskReady(row.provider);
  if (rows.length > 0) hints.taskEvents();
  return rows;
}

/** Forget workers long silent; their tasks were rescued already. */
export async function pruneDeadWorkers(db: Queryable, deadAfterMs: number): Promise<void> {
  await db.query(
    `DELETE FROM workers w WHERE last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.worker_id = w.id AND t.status = 'running')`,
    [deadAfterMs * 10],
  );
}
