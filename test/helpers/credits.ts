import { expect } from 'vitest';
import type { Pool } from '../../src/db/pool.js';

/**
 * The ledger's invariants, over the whole database: every account's balance and held equal the
 * sums of its ledger entries; held equals its open holds; each hold's ledger rows net to its
 * amount while open and to zero once closed; no task has more than one capture; no finished
 * task keeps an open hold. Tests call it at the end of every scenario.
 */
export async function expectLedgerConsistent(pool: Pool): Promise<void> {
  const { rows: accounts } = await pool.query(`
    WITH sums AS (SELECT user_id, sum(amount)::bigint AS amount, sum(held)::bigint AS held FROM credit_ledger GROUP BY user_id),
         open AS (SELECT user_id, sum(amount)::bigint AS amount FROM credit_holds WHERE status = 'open' GROUP BY user_id)
    SELECT coalesce(a.user_id, s.user_id) AS user_id, a.balance, a.held, s.amount AS ledger_amount,
           s.held AS ledger_held, o.amount AS open_holds
    FROM credit_accounts a FULL JOIN sums s ON s.user_id = a.user_id LEFT JOIN open o ON o.user_id = coalesce(a.user_id, s.user_id)
    WHERE coalesce(a.balance, 0) <> coalesce(s.amount, 0) OR coalesce(a.held, 0) <> coalesce(s.held, 0)
       OR coalesce(a.held, 0) <> coalesce(o.amount, 0)`);
  expect(accounts, 'accounts whose balance or held differ from the ledger').toEqual([]);
  const { rows: holds } = await pool.query(`
    SELECT h.id, h.status, h.amount, coalesce(sum(l.held), 0)::bigint AS net
    FROM credit_holds h LEFT JOIN credit_ledger l ON l.hold_id = h.id
    GROUP BY h.id
    HAVING coalesce(sum(l.held), 0) <> CASE h.status WHEN 'open' THEN h.amount ELSE 0 END`);
  expect(holds, 'holds whose ledger rows do not net out').toEqual([]);
  const { rows: captures } = await pool.query(`
    SELECT task_id, count(*)::int AS n FROM credit_ledger WHERE kind = 'capture' GROUP BY task_id HAVING count(*) > 1`);
  expect(captures, 'tasks captured more than once').toEqual([]);
  const { rows: stale } = await pool.query(`
    SELECT h.task_id, t.status FROM credit_holds h JOIN tasks t ON t.id = h.task_id
    WHERE h.status = 'open' AND t.status IN ('succeeded', 'failed', 'canceled')`);
  expect(stale, 'finished tasks with an open hold').toEqual([]);
}

/** One user's ledger entries by kind, oldest first, amounts in micro-credits. */
export async function ledgerOf(
  pool: Pool,
  userId: string,
): Promise<Array<{ kind: string; amount: number; held: number; task_id: string | null }>> {
  const { rows } = await pool.query(
    'SELECT kind, amount, held, task_id FROM credit_ledger WHERE user_id = $1 ORDER BY id',
    [userId],
  );
  return rows;
}
