import { uuidv7 } from 'uuidv7';
import type { Queryable } from '../db/pool.js';
import { ApiError } from '../domain/errors.js';
import { priceOf, type Prices } from '../config/prices.js';
import { planHold, type BillableTarget, type HoldPlan } from './estimate.js';
import { toCredits } from './money.js';

/**
 * Holds are placed inside the transaction that queues the task (a submit, a retry of a dead
 * letter), in two steps around the task's own write:
 *
 * 1. `reserveCredits` raises the user's `held` if, and only if, balance − held still covers the
 *    hold (and the minimum balance). It is one conditional UPDATE of the user's account row:
 *    concurrent submits queue on that row lock and each re-checks the condition against the
 *    row as the previous one committed it, so a balance that covers ten accepts exactly ten.
 *    A refusal matched no row and wrote nothing; the caller rolls back.
 * 2. `recordHold` writes the hold (its chain number one past the task's last) and its ledger row.
 */
const RESERVE = `
UPDATE credit_accounts SET held = held + $2, updated_at = now()
WHERE user_id = $1 AND balance - held >= greatest($2::bigint, $3::bigint)
RETURNING user_id`;

const RECORD_HOLD = `
WITH h AS (
  INSERT INTO credit_holds (id, task_id, user_id, chain, amount, prices)
  VALUES ($1, $2, $3, (SELECT coalesce(max(chain), 0) + 1 FROM credit_holds WHERE task_id = $2), $4, $5)
  RETURNING *
)
INSERT INTO credit_ledger (user_id, kind, amount, held, task_id, hold_id, actor_id, reason)
SELECT user_id, 'hold', 0, amount, task_id, id, $6, $7 FROM h`;

export async function reserveCredits(
  db: Queryable,
  userId: string,
  plan: HoldPlan,
  minBalanceMicro: number,
): Promise<boolean> {
  const { rowCount } = await db.query({
    name: 'easel_reserve_credits',
    text: RESERVE,
    values: [userId, plan.amount, minBalanceMicro],
  });
  return (rowCount ?? 0) > 0;
}

export async function recordHold(
  db: Queryable,
  hold: { taskId: string; userId: string; actorId: string; plan: HoldPlan; reason: string },
): Promise<void> {
  await db.query({
    name: 'easel_record_hold',
    text: RECORD_HOLD,
    values: [uuidv7(), hold.taskId, hold.userId, hold.plan.amount, hold.plan.prices, hold.actorId, hold.reason],
  });
}

/** The 402 for a refused hold, with the numbers that explain it (read after the rollback). */
export async function insufficientCredits(
  db: Queryable,
  userId: string,
  plan: HoldPlan,
  minBalanceMicro: number,
): Promise<ApiError> {
  const { rows } = await db.query<{ balance: number; held: number }>(
    'SELECT balance, held FROM credit_accounts WHERE user_id = $1',
    [userId],
  );
  const balance = rows[0]?.balance ?? 0;
  const held = rows[0]?.held ?? 0;
  const needed = Math.max(plan.amount, minBalanceMicro);
  return new ApiError(
    'INSUFFICIENT_CREDITS',
    `this task needs ${toCredits(needed)} credits available; you have ${toCredits(balance - held)} (balance ${toCredits(balance)}, held ${toCredits(held)})`,
    {
      balance: toCredits(balance),
      held: toCredits(held),
      available: toCredits(balance - held),
      needed: toCredits(plan.amount),
      min_balance: toCredits(minBalanceMicro),
    },
  );
}

/** Median of the provider's own seconds over recent successes of each provider/model. */
export async function recentRunSeconds(db: Queryable, targets: BillableTarget[]): Promise<Map<string, number>> {
  if (targets.length === 0) return new Map();
  const { rows } = await db.query<{ provider: string; model: string; median: number | null }>({
    name: 'easel_recent_run_seconds',
    text: `SELECT p.provider, p.model,
                  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY predict_time) FROM (
                     SELECT predict_time FROM tasks
                     WHERE status = 'succeeded' AND provider = p.provider AND model = p.model
                       AND predict_time IS NOT NULL AND finished_at > now() - interval '1 day'
                     ORDER BY finished_at DESC LIMIT 100) recent) AS median
           FROM unnest($1::text[], $2::text[]) AS p(provider, model)`,
    values: [targets.map((t) => t.provider), targets.map((t) => t.model)],
  });
  return new Map(rows.filter((row) => row.median !== null).map((row) => [`${row.provider}/${row.model}`, row.median!]));
}

/** The hold a task on `targets` needs, with recent run times read for per-second targets. */
export async function planTaskHold(db: Queryable, prices: Prices, targets: BillableTarget[]): Promise<HoldPlan | null> {
  const perSecond = targets.filter((target) => {
    const price = priceOf(prices, target.provider, target.model);
    return price !== null && 'per_second' in price;
  });
  const recent = perSecond.length > 0 ? await recentRunSeconds(db, perSecond) : new Map<string, number>();
  return planHold(prices, targets, (provider, model) => recent.get(`${provider}/${model}`) ?? null);
}

/** A read-only early answer: the transaction decides, this only spares work for a sure refusal. */
export async function mayCover(
  db: Queryable,
  userId: string,
  plan: HoldPlan,
  minBalanceMicro: number,
): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>({
    name: 'easel_may_cover',
    text: `SELECT coalesce((SELECT balance - held >= greatest($2::bigint, $3::bigint)
                            FROM credit_accounts WHERE user_id = $1), false) AS ok`,
    values: [userId, plan.amount, minBalanceMicro],
  });
  return rows[0]?.ok ?? false;
}

/** Per task: what it was charged and what is held for it now; absent = unpriced. */
export interface TaskCharges {
  capturedMicro: number;
  openMicro: number | null;
}

export async function taskCharges(db: Queryable, taskIds: string[]): Promise<Map<string, TaskCharges>> {
  if (taskIds.length === 0) return new Map();
  const { rows } = await db.query<{ task_id: string; captured: number; open: number | null }>({
    name: 'easel_task_charges',
    text: `SELECT task_id, coalesce(sum(captured) FILTER (WHERE status = 'captured'), 0)::bigint AS captured,
                  sum(amount) FILTER (WHERE status = 'open')::bigint AS open
           FROM credit_holds WHERE task_id = ANY($1::uuid[]) GROUP BY task_id`,
    values: [taskIds],
  });
  return new Map(rows.map((row) => [row.task_id, { capturedMicro: row.captured, openMicro: row.open }]));
}
