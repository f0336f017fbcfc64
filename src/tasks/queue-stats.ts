import type { Queryable } from '../db/pool.js';

/** Counts per provider and priority: the four states an operator watches (seed 002's asynq view). */
export interface QueueCounts {
  provider: string;
  priority: number;
  /** Queued for a first run. */
  queued: number;
  running: number;
  /** Queued again after a failed attempt (attempt > 0 or an error kept): asynq's `retry`. */
  retrying: number;
  /** Failed for good, the dead letters: asynq's `archived`. */
  dead: number;
}

export interface DayCounts {
  /** The UTC day, `YYYY-MM-DD`. */
  date: string;
  /** Tasks that finished that day, succeeded or failed (asynq's `processed`, which counts failures too). */
  processed: number;
  failed: number;
}

/**
 * One branch per state, so each reads only its own rows on its index (tasks_queued and
 * tasks_running are partial indexes of the hot set; failed rows come from tasks_by_status,
 * migration 0013), never the succeeded history. Dead letters are read in full: their number is
 * what purge keeps small.
 */
const COUNTS_BY_PROVIDER_AND_PRIORITY = `
SELECT provider, priority::int AS priority,
       count(*) FILTER (WHERE status = 'queued' AND NOT retried)::int AS queued,
       count(*) FILTER (WHERE status = 'running')::int AS running,
       count(*) FILTER (WHERE status = 'queued' AND retried)::int AS retrying,
       count(*) FILTER (WHERE status = 'failed')::int AS dead
FROM (
  SELECT provider, priority, status, (attempt > 0 OR error IS NOT NULL) AS retried FROM tasks WHERE status = 'queued'
  UNION ALL
  SELECT provider, priority, status, false FROM tasks WHERE status = 'running'
  UNION ALL
  SELECT provider, priority, status, false FROM tasks WHERE status = 'failed'
) live
GROUP BY provider, priority
ORDER BY provider, priority DESC`;

/**
 * The last `$1` UTC days, today included, each listed even when nothing finished. Reads only
 * the tasks finished in those days, on tasks_finished (migration 0013).
 */
const COUNTS_PER_DAY = `
WITH days AS (
  SELECT generate_series(date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => $1 - 1),
                         date_trunc('day', now() AT TIME ZONE 'UTC'), interval '1 day') AS day
), finished AS (
  SELECT date_trunc('day', finished_at AT TIME ZONE 'UTC') AS day, count(*)::int AS processed,
         count(*) FILTER (WHERE status = 'failed')::int AS failed
  FROM tasks
  WHERE status IN ('succeeded', 'failed')
    AND finished_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => $1 - 1)) AT TIME ZONE 'UTC'
  GROUP BY 1
)
SELECT to_char(days.day, 'YYYY-MM-DD') AS date, coalesce(finished.processed, 0) AS processed,
       coalesce(finished.failed, 0) AS failed
FROM days LEFT JOIN finished USING (day)
ORDER BY days.day DESC`;

export async function queueCounts(db: Queryable): Promise<QueueCounts[]> {
  const { rows } = await db.query<QueueCounts>(COUNTS_BY_PROVIDER_AND_PRIORITY);
  return rows;
}

/** Newest day first. */
export async function countsPerDay(db: Queryable, days: number): Promise<DayCounts[]> {
  const { rows } = await db.query<DayCounts>({ text: COUNTS_PER_DAY, values: [days] });
  return rows;
}

/** The statements, for the tests that check their plans. */
export const QUEUE_STATS_SQL = { byProviderAndPriority: COUNTS_BY_PROVIDER_AND_PRIORITY, perDay: COUNTS_PER_DAY };
