import type { Pool } from '../db/pool.js';
import { describeError } from '../domain/errors.js';
import { LicenseApiRefused, type LicenseApi } from './license-api.js';

/**
 * Sending the charges of external_charges (0014) to the licence API. A charge is claimed with a
 * lease (claimed_until) by one sender at a time (FOR UPDATE SKIP LOCKED): two settlers running at
 * once, on two workers or a worker and `easel billing reconcile`, take disjoint charges. The
 * lease outlasts the request's timeout, so a slow answer is not sent again while it may still
 * arrive; and the task id goes with it as the idempotency reference, so even a resend after a
 * lost answer deducts once.
 */

/** A claim lasts this much longer than the request's own timeout. */
const LEASE_MARGIN_MS = 10_000;
/** Workers' backoff after a failed send: attempts × this, at most BACKOFF_MAX_MS. */
const BACKOFF_STEP_MS = 15_000;
const BACKOFF_MAX_MS = 10 * 60_000;

const CLAIM = `
UPDATE external_charges SET claimed_until = now() + make_interval(secs => $2::double precision / 1000),
                            attempts = attempts + 1, updated_at = now()
WHERE id IN (
  SELECT id FROM external_charges
  WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < now())
    AND (retry_at IS NULL OR retry_at <= now() OR updated_at < $3::timestamptz)
  ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
RETURNING id, task_id, email, amount, attempts`;

const SETTLED = `
UPDATE external_charges SET status = 'settled', settled_at = now(), updated_at = now(), last_error = NULL,
                            claimed_until = NULL, retry_at = NULL
WHERE id = $1 AND status = 'pending'`;

const NOT_SETTLED = `
UPDATE external_charges SET status = $2, last_error = $3, updated_at = now(), claimed_until = NULL,
                            retry_at = now() + make_interval(secs => $4::double precision / 1000)
WHERE id = $1 AND status = 'pending'`;

export interface SettleCounts {
  settled: number;
  /** Refused by the licence API: not sent again. */
  failed: number;
  /** Still pending after a failed send (unreachable, timeout, 5xx). */
  retrying: number;
}

interface Claimed {
  id: string;
  task_id: string;
  email: string;
  amount: number;
  attempts: number;
}

/**
 * One batch: claim up to `limit` pending charges and send them together (bounded, so the lease
 * covers them all). `untriedSince`: reconcile also sends charges a worker would still wait on,
 * those not tried since it began (so one that fails during the run is not tried again in it).
 */
export async function settleBatch(
  pool: Pool,
  api: LicenseApi,
  options: { limit: number; timeoutMs: number; untriedSince?: Date },
): Promise<SettleCounts & { claimed: number }> {
  const { rows } = await pool.query<Claimed>({
    name: 'easel_claim_external_charges',
    text: CLAIM,
    values: [options.limit, options.timeoutMs + LEASE_MARGIN_MS, options.untriedSince ?? null],
  });
  const counts = { claimed: rows.length, settled: 0, failed: 0, retrying: 0 };
  await Promise.all(
    rows.map(async (charge) => {
      try {
        await api.deduct(charge.email, Number(charge.amount), charge.task_id);
        await pool.query({ name: 'easel_external_charge_settled', text: SETTLED, values: [charge.id] });
        counts.settled += 1;
      } catch (error) {
        const refused = error instanceof LicenseApiRefused;
        const backoffMs = Math.min(charge.attempts * BACKOFF_STEP_MS, BACKOFF_MAX_MS);
        await pool.query({
          name: 'easel_external_charge_not_settled',
          text: NOT_SETTLED,
          values: [charge.id, refused ? 'failed' : 'pending', describeError(error).slice(0, 500), backoffMs / 1000],
        });
        if (refused) counts.failed += 1;
        else counts.retrying += 1;
      }
    }),
  );
  return counts;
}

/** Unsettled charges now: pending (will be sent) and failed (refused; an operator's turn). */
export async function unreconciledCounts(pool: Pool): Promise<{ pending: number; failed: number }> {
  const { rows } = await pool.query<{ pending: number; failed: number }>(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'failed')::int AS failed
     FROM external_charges WHERE status <> 'settled'`,
  );
  return rows[0] ?? { pending: 0, failed: 0 };
}

/**
 * Send every pending charge now, once each (batches until none is left to claim; a charge that
 * fails waits out its backoff, which is never 0, so it is not claimed again in this run); failed
 * ones too if asked.
 */
export async function reconcile(
  pool: Pool,
  api: LicenseApi,
  options: { timeoutMs: number; retryFailed: boolean; batch?: number; maxCharges?: number },
): Promise<SettleCounts & { pending: number; failed_total: number }> {
  if (options.retryFailed) {
    await pool.query(
      `UPDATE external_charges SET status = 'pending', retry_at = NULL, updated_at = now() WHERE status = 'failed'`,
    );
  }
  const total: SettleCounts = { settled: 0, failed: 0, retrying: 0 };
  const maxCharges = options.maxCharges ?? 1000;
  const { rows } = await pool.query<{ started: Date }>('SELECT clock_timestamp() AS started');
  let sent = 0;
  while (sent < maxCharges) {
    const batch = await settleBatch(pool, api, {
      limit: Math.min(options.batch ?? 20, maxCharges - sent),
      timeoutMs: options.timeoutMs,
      untriedSince: rows[0]!.started,
    });
    if (batch.claimed === 0) break;
    sent += batch.claimed;
    total.settled += batch.settled;
    total.failed += batch.failed;
    total.retrying += batch.retrying;
  }
  const left = await unreconciledCounts(pool);
  return { ...total, pending: left.pending, failed_total: left.failed };
}

export interface UnreconciledCharge {
  task_id: string;
  user_id: string;
  email: string;
  amount: number;
  status: 'pending' | 'failed';
  attempts: number;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

/** Charges not settled, oldest task first, keyset-paginated by task id (UUIDv7: time order). */
export async function listUnreconciled(
  pool: Pool,
  page: { limit: number; cursor: string | undefined },
): Promise<UnreconciledCharge[]> {
  const { rows } = await pool.query<UnreconciledCharge>(
    `SELECT task_id, user_id, email, amount, status, attempts, last_error, created_at, updated_at
     FROM external_charges
     WHERE status <> 'settled' AND ($2::uuid IS NULL OR task_id > $2::uuid)
     ORDER BY task_id LIMIT $1`,
    [page.limit, page.cursor ?? null],
  );
  return rows;
}
