import pg from 'pg';
import type { Pool } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskRow } from './rows.js';

/**
 * Claims run one provider at a time under a transaction-scoped advisory lock, so two workers
 * can never both see a free slot and overshoot the provider's limit. Under READ COMMITTED the
 * claim statement, which starts after the lock is granted, sees the previous claimer's commit.
 *
 * The whole transaction travels as one simple-protocol message (one round trip instead of four);
 * that protocol takes no parameters, so the values are checked and quoted here.
 */
function claimTransactionSql(request: ClaimRequest): string {
  const provider = pg.escapeLiteral(request.provider);
  const workerId = pg.escapeLiteral(request.workerId);
  if (!Number.isSafeInteger(request.want) || !Number.isSafeInteger(request.providerLimit)) {
    throw new TypeError('claim sizes must be integers');
  }
  return `BEGIN;
-- Losing a claim in a crash is harmless (the task is simply queued again): no waiting for the disk.
SET LOCAL synchronous_commit = off;
SELECT pg_advisory_xact_lock(hashtextextended('easel:claim:' || ${provider}, 0));
${CLAIM.replaceAll('$1', provider).replaceAll('$2', String(request.want)).replaceAll('$3', String(request.providerLimit)).replaceAll('$4', workerId)};
COMMIT;`;
}

const CLAIM = `
WITH running AS (
  SELECT count(*) AS n FROM tasks WHERE status = 'running' AND provider = $1
), picked AS MATERIALIZED (
  SELECT id FROM tasks
  WHERE status = 'queued' AND provider = $1 AND run_after <= now()
  ORDER BY rank, vtime, id
  LIMIT greatest(0, least($2::int, $3::int - (SELECT n FROM running)))
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE tasks t
  SET status = 'running', attempt = t.attempt + 1, worker_id = $4, lease_token = gen_random_uuid(),
      started_at = now(), updated_at = now(), stage = 'starting', progress = 0, error = NULL
  FROM picked WHERE t.id = picked.id
  RETURNING t.*
), clock AS (
  INSERT INTO provider_clocks (provider, vclock, claimed_total)
  SELECT $1, max(vtime), count(*) FROM claimed HAVING count(*) > 0
  ON CONFLICT (provider) DO UPDATE SET vclock = greatest(provider_clocks.vclock, EXCLUDED.vclock),
                                       claimed_total = provider_clocks.claimed_total + EXCLUDED.claimed_total
), event AS (
  ${insertEventsSql('claimed', sqlLiteral(TaskEventType.running))}
)
SELECT * FROM claimed ORDER BY rank, vtime, id`;

export interface ClaimRequest {
  provider: string;
  workerId: string;
  /** Free slots in this worker. */
  want: number;
  /** The provider's global limit on running tasks, across all workers. */
  providerLimit: number;
}

/** Claim up to `want` runnable tasks in queue order; each comes back with a fresh lease token. */
export async function claimTasks(pool: Pool, hints: Hints, request: ClaimRequest): Promise<TaskRow[]> {
  if (request.want <= 0) return [];
  const client = await pool.connect();
  let results: pg.QueryResult<TaskRow>[];
  try {
    results = (await client.query(claimTransactionSql(request))) as unknown as pg.QueryResult<TaskRow>[];
  } catch (error) {
    // A failed statement leaves the session inside an aborted transaction (or the connection is
    // gone): drop the connection, which ends the transaction, rather than reuse it.
    client.release(error as Error);
    throw error;
  }
  client.release();
  const rows = results[3]!.rows;
  if (rows.length > 0) hints.taskEvents();
  return rows;
}
