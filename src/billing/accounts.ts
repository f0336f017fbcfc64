import type { Pool, Queryable } from '../db/pool.js';
import { inTransaction, Rollback } from '../db/transaction.js';
import { toCredits } from './money.js';

/** A `credit_ledger` row as the driver returns it (amounts in micro-credits). */
export interface LedgerRow {
  id: number;
  user_id: string;
  kind: 'top_up' | 'hold' | 'capture' | 'release' | 'refund' | 'adjustment';
  amount: number;
  held: number;
  task_id: string | null;
  hold_id: string | null;
  actor_id: string | null;
  reason: string;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: Date;
}

export interface Balance {
  balanceMicro: number;
  heldMicro: number;
}

/** A user without an account row has never been credited: zero and zero. */
export async function balanceOf(db: Queryable, userId: string): Promise<Balance> {
  const { rows } = await db.query<{ balance: number; held: number }>(
    'SELECT balance, held FROM credit_accounts WHERE user_id = $1',
    [userId],
  );
  return { balanceMicro: rows[0]?.balance ?? 0, heldMicro: rows[0]?.held ?? 0 };
}

/** Several users' balances in credits; a user never credited is 0. */
export async function balancesOf(db: Queryable, userIds: string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ user_id: string; balance: number }>(
    'SELECT user_id, balance FROM credit_accounts WHERE user_id = ANY($1::uuid[])',
    [userIds],
  );
  const balances = new Map(userIds.map((id) => [id, 0]));
  for (const row of rows) balances.set(row.user_id, toCredits(Number(row.balance)));
  return balances;
}

/** Newest first; `before` is the id of the last entry of the previous page. */
export async function ledgerPage(
  db: Queryable,
  userId: string,
  options: { before?: number | undefined; limit: number },
): Promise<{ entries: LedgerRow[]; nextCursor: number | null }> {
  const { rows } = await db.query<LedgerRow>({
    name: 'easel_ledger_page',
    text: `SELECT * FROM credit_ledger WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3`,
    values: [userId, options.before ?? null, options.limit + 1],
  });
  const entries = rows.slice(0, options.limit);
  return { entries, nextCursor: rows.length > options.limit ? entries.at(-1)!.id : null };
}

export interface CreditRequest {
  userId: string;
  actorId: string;
  kind: 'top_up' | 'adjustment';
  amountMicro: number;
  reason: string;
  idempotencyKey?: string | undefined;
  requestHash?: string | undefined;
}

export type CreditOutcome =
  | { kind: 'created' | 'replayed'; entry: LedgerRow; balance: Balance }
  | { kind: 'key_conflict'; entry: LedgerRow }
  | { kind: 'user_not_found' };

/**
 * An admin's top-up or adjustment: the ledger entry and the balance change in one transaction.
 * With an Idempotency-Key (unique per credited user), a repeat returns the first entry and
 * moves no money; the same key with another request is a conflict. Deleted users are unknown.
 */
export async function addCredits(pool: Pool, request: CreditRequest): Promise<CreditOutcome> {
  const outcome = await inTransaction(pool, async (client): Promise<CreditOutcome> => {
    // FOR SHARE: a delete of the user waits for this credit, or this waits and sees it deleted.
    const { rows: user } = await client.query('SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL FOR SHARE', [
      request.userId,
    ]);
    if (user.length === 0) throw new Rollback<CreditOutcome>({ kind: 'user_not_found' });
    const { rows } = await client.query<LedgerRow>({
      name: 'easel_add_credits',
      text: `INSERT INTO credit_ledger (user_id, kind, amount, actor_id, reason, idempotency_key, request_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING *`,
      values: [
        request.userId,
        request.kind,
        request.amountMicro,
        request.actorId,
        request.reason,
        request.idempotencyKey ?? null,
        request.requestHash ?? null,
      ],
    });
    const entry = rows[0];
    if (!entry) {
      // A repeat: the first request's entry is committed (ON CONFLICT waited for it).
      const { rows: first } = await client.query<LedgerRow>(
        'SELECT * FROM credit_ledger WHERE user_id = $1 AND idempotency_key = $2',
        [request.userId, request.idempotencyKey],
      );
      const earlier = first[0]!;
      if (earlier.request_hash !== (request.requestHash ?? null)) return { kind: 'key_conflict', entry: earlier };
      return { kind: 'replayed', entry: earlier, balance: await balanceOf(client, request.userId) };
    }
    const { rows: account } = await client.query<{ balance: number; held: number }>({
      name: 'easel_credit_account',
      text: `INSERT INTO credit_accounts AS a (user_id, balance) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET balance = a.balance + EXCLUDED.balance, updated_at = now()
             RETURNING balance, held`,
      values: [request.userId, request.amountMicro],
    });
    return { kind: 'created', entry, balance: { balanceMicro: account[0]!.balance, heldMicro: account[0]!.held } };
  }).catch((error: unknown) => {
    if (error instanceof Rollback) return error.value as CreditOutcome;
    throw error;
  });
  return outcome;
}
