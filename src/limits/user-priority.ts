import type { Queryable } from '../db/pool.js';
import { maxPriorityFor, type Role } from '../domain/priority.js';

/**
 * The highest priority `userId` may give a task: `users.max_priority`, or its role's default.
 * An unknown user gets a plain user's default (the caller refuses unknown users elsewhere).
 */
export async function readMaxPriority(db: Queryable, userId: string): Promise<number> {
  const { rows } = await db.query<{ role: Role; max_priority: number | null }>({
    name: 'easel_read_max_priority',
    text: 'SELECT role, max_priority FROM users WHERE id = $1',
    values: [userId],
  });
  const row = rows[0];
  return maxPriorityFor(row?.role ?? 'user', row?.max_priority ?? null);
}

/**
 * Set (0–10) or clear (null: back to the role's default) a user's priority ceiling, for the
 * users routes and CLI. Tasks already queued keep their priority; the ceiling applies to the
 * next submit or retry. False when there is no such live user.
 */
export async function setUserMaxPriority(db: Queryable, userId: string, maxPriority: number | null): Promise<boolean> {
  if (maxPriority !== null && !(Number.isInteger(maxPriority) && maxPriority >= 0 && maxPriority <= 10)) {
    throw new RangeError(`max_priority must be an integer from 0 to 10 or null, not ${maxPriority}`);
  }
  const { rowCount } = await db.query(
    'UPDATE users SET max_priority = $2, updated_at = now() WHERE id = $1 AND deleted_at IS NULL',
    [userId, maxPriority],
  );
  return rowCount === 1;
}
