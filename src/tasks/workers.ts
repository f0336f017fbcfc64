import os from 'node:os';
import type { Queryable } from '../db/pool.js';

export async function registerWorker(db: Queryable, worker: { id: string; concurrency: number }): Promise<void> {
  await db.query(
    `INSERT INTO workers (id, host, pid, concurrency) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET last_seen_at = now()`,
    [worker.id, os.hostname(), process.pid, worker.concurrency],
  );
}

/**
 * One round trip says "still alive" and returns this worker's tasks whose cancel was requested:
 * the backstop for a cancel NOTIFY that never arrived. Upserts, so a worker that was presumed
 * dead and pruned comes back.
 */
export async function heartbeat(db: Queryable, worker: { id: string; concurrency: number }): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>({
    name: 'easel_heartbeat',
    text: `WITH beat AS (
             INSERT INTO workers (id, host, pid, concurrency) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
           )
           SELECT id FROM tasks WHERE worker_id = $1 AND status = 'running' AND cancel_requested_at IS NOT NULL`,
    values: [worker.id, os.hostname(), process.pid, worker.concurrency],
  });
  return rows.map((row) => row.id);
}

export async function unregisterWorker(db: Queryable, workerId: string): Promise<void> {
  await db.query('DELETE FROM workers WHERE id = $1', [workerId]);
}

/** Workers heard from recently and their total slots: the capacity ETAs divide by. */
export async function liveWorkers(db: Queryable, deadAfterMs: number): Promise<{ live: number; slots: number }> {
  const { rows } = await db.query<{ live: number; slots: number }>({
    name: 'easel_live_workers',
    text: `SELECT count(*)::int AS live, coalesce(sum(concurrency), 0)::int AS slots FROM workers
           WHERE last_seen_at > now() - make_interval(secs => $1::double precision / 1000)`,
    values: [deadAfterMs],
  });
  return rows[0] ?? { live: 0, slots: 0 };
}
