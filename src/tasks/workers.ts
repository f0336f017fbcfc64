import os from 'node:os';
import type { Queryable } from '../db/pool.js';
import type { Lease } from './rows.js';

/** pg honours a per-query `query_timeout`, but its types do not declare it. */
type QueryConfigWithTimeout = { name: string; text: string; values: unknown[]; query_timeout?: number };

export async function registerWorker(db: Queryable, worker: { id: string; concurrency: number }): Promise<void> {
  await db.query(
    `INSERT INTO workers (id, host, pid, concurrency) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET last_seen_at = now()`,
    [worker.id, os.hostname(), process.pid, worker.concurrency],
  );
}

export interface HeartbeatAnswer {
  /** This worker's running tasks whose cancel was requested (in case the NOTIFY was lost). */
  cancel: string[];
  /** Leases the worker holds that the database no longer gives it: someone else owns the task now. */
  lost: string[];
}

/**
 * One round trip says "still alive", and tells the worker what changed under it: pending cancels,
 * and which of the leases it holds are gone (rescued while it looked dead, or re-claimed).
 * Upserts, so a worker that was presumed dead and pruned comes back. `timeoutMs` bounds the
 * round trip, so a heartbeat stuck on a silent connection fails in time for the next one.
 */
export async function heartbeat(
  db: Queryable,
  worker: { id: string; concurrency: number },
  leases: ReadonlyArray<Pick<Lease, 'taskId' | 'token'>>,
  options: { timeoutMs?: number } = {},
): Promise<HeartbeatAnswer> {
  const { rows } = await db.query<{ id: string; lost: boolean }>({
    name: 'easel_heartbeat',
    text: `WITH beat AS (
             INSERT INTO workers (id, host, pid, concurrency) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
           ), held AS (
             SELECT * FROM unnest($5::uuid[], $6::uuid[]) AS held(task_id, lease_token)
           )
           SELECT id, false AS lost FROM tasks
           WHERE worker_id = $1 AND status = 'running' AND cancel_requested_at IS NOT NULL
           UNION ALL
           SELECT held.task_id, true FROM held
           WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = held.task_id
                               AND t.lease_token = held.lease_token AND t.status = 'running')`,
    values: [
      worker.id,
      os.hostname(),
      process.pid,
      worker.concurrency,
      leases.map((lease) => lease.taskId),
      leases.map((lease) => lease.token),
    ],
    ...(options.timeoutMs ? { query_timeout: options.timeoutMs } : {}),
  } as QueryConfigWithTimeout);
  return {
    cancel: rows.filter((row) => !row.lost).map((row) => row.id),
    lost: rows.filter((row) => row.lost).map((row) => row.id),
  };
}

export async function unregisterWorker(db: Queryable, workerId: string): Promise<void> {
  await db.query('DELETE FROM workers WHERE id = $1', [workerId]);
}

/**
 * Workers alive by the rule claims and the rescuer use (`easel_worker_alive`), and their total
 * slots: the capacity ETAs divide by.
 */
export async function liveWorkers(db: Queryable, deadAfterMs: number): Promise<{ live: number; slots: number }> {
  const { rows } = await db.query<{ live: number; slots: number }>({
    name: 'easel_live_workers',
    text: `SELECT count(*)::int AS live, coalesce(sum(concurrency), 0)::int AS slots FROM workers
           WHERE easel_worker_alive(last_seen_at, $1)`,
    values: [deadAfterMs],
  });
  return rows[0] ?? { live: 0, slots: 0 };
}
