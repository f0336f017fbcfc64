import type { Queryable } from '../db/pool.js';
import { TaskErrorCodes } from '../domain/errors.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql } from './events.js';

/** A task rescued this many times fails instead of taking down one worker after another. */
export const MAX_RESCUES = 3;

/**
 * Running tasks whose worker is no longer alive (silent for dead-after, or vanished), or whose
 * attempt passed the hard timeout, go back to the queue with their original fair-queuing tag,
 * so they run next. The lost attempt still counts; past max attempts, or past MAX_RESCUES, the
 * task fails; a task whose cancel was requested ends canceled. Any process may run this at any
 * time: SKIP LOCKED and the status guard make concurrent rescuers harmless.
 *
 * "Alive" is `easel_worker_alive` (migration 0002), the rule claims count slots by: silence
 * counts from the later of the last heartbeat and the database server's start, so the first
 * pass after a database restart does not declare every worker dead.
 */
const RESCUE = `
WITH lost AS (
  SELECT t.id,
         CASE WHEN easel_worker_alive(w.last_seen_at, $1) THEN '${TaskErrorCodes.ATTEMPT_TIMED_OUT}'
              ELSE '${TaskErrorCodes.WORKER_LOST}' END AS reason
  FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
  WHERE t.status = 'running'
    AND (NOT easel_worker_alive(w.last_seen_at, $1)
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
    // The worker aborts its own attempt at taskTimeoutMs and records the outcome under its lease.
    // The rescuer steps in only a dead-after later, so it never races a live worker's own timeout
    // and takes over only an attempt whose worker is stuck.
    values: [limits.deadAfterMs, limits.taskTimeoutMs + limits.deadAfterMs, MAX_RESCUES],
  });
  for (const row of rows) hints.taskReady(row.provider);
  if (rows.length > 0) hints.taskEvents();
  return rows;
}

/**
 * Forget workers silent for ten times dead-after (by the same clock as the rescuer); their tasks
 * were rescued already. A worker that comes back is safe: its heartbeat updates the row, and the
 * DELETE re-checks a row updated under it, or the heartbeat's upsert inserts the row again.
 */
export async function pruneDeadWorkers(db: Queryable, deadAfterMs: number): Promise<void> {
  await db.query(
    `DELETE FROM workers w WHERE NOT easel_worker_alive(last_seen_at, $1)
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.worker_id = w.id AND t.status = 'running')`,
    [deadAfterMs * 10],
  );
}
