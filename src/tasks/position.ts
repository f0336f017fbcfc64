import type { Queryable } from '../db/pool.js';
import type { TaskRow } from './rows.js';

/**
 * How many queued tasks of the same provider run before this one, exactly: the rows before it
 * in the queue's own order (rank, vtime, id), counted from the partial index `tasks_queued`
 * alone. Its cost grows with the queue, so the API uses QueuePositions; this is the reference
 * it is tested and measured against.
 */
export async function queuePosition(
  db: Queryable,
  task: Pick<TaskRow, 'provider' | 'rank' | 'vtime' | 'id'>,
): Promise<number> {
  const { rows } = await db.query<{ ahead: number }>({
    name: 'easel_queue_position',
    text: `SELECT count(*)::int AS ahead FROM tasks
           WHERE status = 'queued' AND provider = $1 AND (rank, vtime, id) < ($2::smallint, $3::bigint, $4::uuid)`,
    values: [task.provider, task.rank, task.vtime, task.id],
  });
  return rows[0]?.ahead ?? 0;
}

/** Median seconds of the provider's recent successful attempts (last 15 minutes, at most 200). */
const medianRunSql = (providerSql: string): string => `(
  SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY predict_time) FROM (
    SELECT predict_time FROM tasks
    WHERE status = 'succeeded' AND provider = ${providerSql} AND finished_at > now() - interval '15 minutes'
    ORDER BY finished_at DESC LIMIT 200) recent)`;

export interface ProviderQueueStats {
  provider: string;
  queued: number;
  running: number;
  /** Median seconds of recent successful attempts; null without recent history. */
  medianRunSeconds: number | null;
}

export async function queueStats(db: Queryable): Promise<ProviderQueueStats[]> {
  const { rows } = await db.query<{ provider: string; queued: number; running: number; median: number | null }>({
    name: 'easel_queue_stats',
    text: `SELECT p.provider,
                  (SELECT count(*)::int FROM tasks WHERE status = 'queued' AND provider = p.provider) AS queued,
                  (SELECT count(*)::int FROM tasks WHERE status = 'running' AND provider = p.provider) AS running,
                  ${medianRunSql('p.provider')} AS median
           FROM (SELECT DISTINCT provider FROM tasks WHERE status IN ('queued', 'running')
                 UNION SELECT provider FROM provider_clocks) p
           ORDER BY p.provider`,
  });
  return rows.map((row) => ({
    provider: row.provider,
    queued: row.queued,
    running: row.running,
    medianRunSeconds: row.median,
  }));
}

export async function medianRunSeconds(db: Queryable, provider: string): Promise<number | null> {
  const { rows } = await db.query<{ median: number | null }>({
    name: 'easel_median_run',
    text: `SELECT ${medianRunSql('$1')} AS median`,
    values: [provider],
  });
  return rows[0]?.median ?? null;
}

/**
 * Seconds until a queued task should finish: the batches of `capacity` tasks ahead of it, and
 * its own run, each taking the recent median. An estimate: later high-priority arrivals and
 * fair queuing can still move the task.
 */
export function estimateSeconds(input: {
  ahead: number;
  capacity: number;
  medianRunSeconds: number | null;
}): number | null {
  if (input.medianRunSeconds === null || input.capacity <= 0) return null;
  const rounds = Math.floor(input.ahead / input.capacity) + 1;
  return Math.max(0, Math.round(rounds * input.medianRunSeconds * 10) / 10);
}
