import type { Pool } from '../db/pool.js';
import { TaskEventType } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskRow } from './rows.js';

/**
 * One statement, one round trip, every value a bind parameter. `easel_claim` (migration 0002)
 * takes the provider's advisory lock and only then counts and claims, so two workers can never
 * both see a free slot and overshoot the provider's limit. Around it, in the same implicit
 * transaction, the provider's clock advances and each claim gets its `task:running` event;
 * both commit (or vanish) with the claim.
 *
 * The clock's upsert runs on the outer statement's snapshot, taken before the lock; that is
 * safe because ON CONFLICT DO UPDATE always updates the newest committed row.
 */
const CLAIM = `
WITH claimed AS (
  SELECT * FROM easel_claim($1::text, $2::int, $3::int, $4::uuid, $5::double precision, $6::text)
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
  /**
   * The worker config's `deadAfterMs`: running tasks of workers silent this long are orphans
   * awaiting rescue, and hold none of the provider's slots.
   */
  deadAfterMs: number;
  /**
   * The provider's credential pool (`Provider.credentialPool`): each claimed task comes with a
   * usable credential of it in `credential_id`, and no more are claimed than credentials can run.
   */
  credentialPool?: string | undefined;
}

/** Claim up to `want` runnable tasks in queue order; each comes back with a fresh lease token. */
export async function claimTasks(pool: Pool, hints: Hints, request: ClaimRequest): Promise<TaskRow[]> {
  if (request.want <= 0) return [];
  // A pool query runs in its own implicit transaction, which holds the advisory lock until it commits.
  const { rows } = await pool.query<TaskRow>({
    name: 'easel_claim',
    text: CLAIM,
    values: [
      request.provider,
      request.want,
      request.providerLimit,
      request.workerId,
      request.deadAfterMs,
      request.credentialPool ?? null,
    ],
  });
  if (rows.length > 0) hints.taskEvents();
  return rows;
}
