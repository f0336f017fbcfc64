import type { Queryable } from '../db/pool.js';
import type { Hints } from '../db/notifier.js';
import { releaseAttempt } from './attempt.js';
import type { Lease, TaskRow } from './rows.js';

/**
 * A remote worker's row in `workers`: the same row a local worker has (claims count its slots,
 * the rescuer reads its heartbeat), with the token it came with and what it said about itself.
 * `host` is what the worker calls itself; `pid` 0, since its process is on another machine.
 */
export async function registerRemoteWorker(
  db: Queryable,
  worker: { id: string; tokenId: string; host: string; concurrency: number; providers: string[]; version: string },
): Promise<'registered' | 'taken'> {
  // A worker id belongs to the token that registered it: another token cannot take it over.
  const { rows } = await db.query<{ token_id: string | null }>(
    `INSERT INTO workers (id, host, pid, concurrency, token_id, providers, version)
     VALUES ($1, $2, 0, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), concurrency = EXCLUDED.concurrency,
       providers = EXCLUDED.providers, version = EXCLUDED.version, host = EXCLUDED.host
       WHERE workers.token_id = EXCLUDED.token_id
     RETURNING token_id`,
    [worker.id, worker.host, worker.concurrency, worker.tokenId, worker.providers, worker.version],
  );
  return rows.length > 0 ? 'registered' : 'taken';
}

/** Whether `workerId` is registered by this token (or not registered at all, e.g. pruned). */
export async function workerOwnedBy(db: Queryable, workerId: string, tokenId: string): Promise<boolean> {
  const { rows } = await db.query<{ token_id: string | null }>('SELECT token_id FROM workers WHERE id = $1', [
    workerId,
  ]);
  return rows.length === 0 || rows[0]!.token_id === tokenId;
}

/** The running task this lease still holds, or undefined once the lease is gone. */
export async function taskUnderLease(db: Queryable, taskId: string, leaseToken: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>({
    name: 'easel_task_under_lease',
    text: `SELECT * FROM tasks WHERE id = $1 AND lease_token = $2 AND status = 'running'`,
    values: [taskId, leaseToken],
  });
  return rows[0];
}

/**
 * A claim's answer can be lost on the way (the connection drops after the claim committed): the
 * task then runs under the worker's id with a lease the worker never received, and its heartbeat
 * would keep it looking alive forever. The heartbeat lists every lease the worker holds, so a
 * task of this worker missing from that list, claimed longer ago than any answer can take, is
 * handed back to the queue uncounted, as on shutdown.
 */
export async function releaseUnheldLeases(
  db: Queryable,
  hints: Hints,
  workerId: string,
  held: ReadonlyArray<Pick<Lease, 'taskId' | 'token'>>,
  graceMs: number,
): Promise<number> {
  const { rows } = await db.query<{ id: string; lease_token: string; provider: string }>(
    `SELECT id, lease_token, provider FROM tasks
     WHERE worker_id = $1 AND status = 'running' AND NOT (lease_token = ANY($2::uuid[]))
       AND started_at < now() - make_interval(secs => $3::double precision / 1000)`,
    [workerId, held.map((lease) => lease.token), Math.max(graceMs * 3, UNRECEIVED_CLAIM_GRACE_MS)],
  );
  for (const row of rows) {
    await releaseAttempt(db, hints, { taskId: row.id, token: row.lease_token, provider: row.provider });
  }
  return rows.length;
}

/** Longer than a claim answer can take to arrive (the long poll is at most 30 s). */
const UNRECEIVED_CLAIM_GRACE_MS = 60_000;
