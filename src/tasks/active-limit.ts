import type { Pool, PoolClient } from '../db/pool.js';
import { inTransaction } from '../db/transaction.js';
import { ApiError } from '../domain/errors.js';

/**
 * EASEL_USER_MAX_ACTIVE_TASKS: how many tasks one user may have queued and running at once.
 *
 * Exact across API processes: a submit or retry takes the user's transaction-scoped advisory
 * lock, then counts, then writes, all in one transaction, so two submits of one user can never
 * both see the last free slot. The count comes from the tasks themselves (the index
 * `tasks_by_user_status`), not from a counter that every status change would have to keep right.
 * The price is that one user's submits run one after another through their commit; other
 * users' submits never wait on it.
 */
export const ACTIVE_STATUSES_SQL = `('queued', 'running')`;

/** Held until the transaction ends; keyed per user (a hash collision only makes two users share a lock). */
const LOCK_USER_TASKS = `SELECT pg_advisory_xact_lock(hashtextextended('easel:user-tasks:' || $1::text, 0))`;

/** How long a refused client is told to wait: a guess, since no one knows when a task will finish. */
export const ACTIVE_LIMIT_RETRY_AFTER_SECONDS = 10;

export function tooManyActiveTasks(max: number): ApiError {
  return new ApiError(
    'TOO_MANY_ACTIVE_TASKS',
    `you have ${max} or more tasks queued or running, the most allowed at once; wait for some to finish or cancel some`,
    { max_active_tasks: max, retry_after_seconds: ACTIVE_LIMIT_RETRY_AFTER_SECONDS },
  );
}

/**
 * Submits of one user waiting for their turn on this pool, so that at most one of them holds a
 * pool connection while it waits on the database lock: a burst from one user must not take
 * every connection of the pool and stall everyone else's requests. Per pool, not per process:
 * the database lock alone orders submits that arrive through different pools (API processes).
 */
const waiting = new WeakMap<Pool, Map<string, Promise<void>>>();

async function inLocalTurn<T>(pool: Pool, userId: string, work: () => Promise<T>): Promise<T> {
  let turns = waiting.get(pool);
  if (!turns) waiting.set(pool, (turns = new Map()));
  const previous = turns.get(userId) ?? Promise.resolve();
  let done!: () => void;
  const mine = previous.then(() => new Promise<void>((resolve) => (done = resolve)));
  turns.set(userId, mine);
  try {
    await previous;
    return await work();
  } finally {
    done?.();
    if (turns.get(userId) === mine) turns.delete(userId);
  }
}

/**
 * Run `work` in a transaction holding `userId`'s task lock. A throw (a refusal included) rolls
 * everything back, so a refused submit writes nothing.
 */
export async function withUserTaskLock<T>(
  pool: Pool,
  userId: string,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  return inLocalTurn(pool, userId, () =>
    inTransaction(pool, async (client) => {
      await client.query({ name: 'easel_lock_user_tasks', text: LOCK_USER_TASKS, values: [userId] });
      return work(client);
    }),
  );
}
