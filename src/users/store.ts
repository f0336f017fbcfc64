import { uuidv7 } from 'uuidv7';
import type { Queryable } from '../db/pool.js';

/** The users table (migrations 0001 and 0009): SQL only; the rules live in service.ts. */

export type Role = 'user' | 'admin';

export interface UserRow {
  id: string;
  email: string | null;
  name: string;
  role: Role;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

const COLUMNS = 'id, email, name, role, created_at, updated_at, deleted_at';

/** PostgreSQL's unique_violation, raised by `users_email` when a live user has the email. */
export const isUniqueViolation = (error: unknown): boolean => (error as { code?: string }).code === '23505';

export async function insertUser(
  db: Queryable,
  user: { email: string | null; name: string; role: Role },
): Promise<UserRow> {
  const { rows } = await db.query<UserRow>(
    `INSERT INTO users (id, email, name, role) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [uuidv7(), user.email, user.name, user.role],
  );
  return rows[0]!;
}

/** A live user; deleted users are gone from every view but their rows stay for the record. */
export async function findLiveUser(db: Queryable, id: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL`, [id]);
  return rows[0];
}

export async function findLiveUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${COLUMNS} FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL`,
    [email],
  );
  return rows[0];
}

/** Live users in id order (UUIDv7: creation order), after the cursor id. */
export async function listLiveUsers(db: Queryable, after: string | undefined, limit: number): Promise<UserRow[]> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${COLUMNS} FROM users WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR id > $1)
     ORDER BY id LIMIT $2`,
    [after ?? null, limit],
  );
  return rows;
}

export async function updateUser(
  db: Queryable,
  id: string,
  changes: { email?: string | null; name?: string; role?: Role },
): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(
    `UPDATE users SET
       email = CASE WHEN $2 THEN $3 ELSE email END,
       name = coalesce($4, name),
       role = coalesce($5, role),
       updated_at = now()
     WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
    [id, 'email' in changes, changes.email ?? null, changes.name ?? null, changes.role ?? null],
  );
  return rows[0];
}

export async function softDeleteUser(db: Queryable, id: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(
    `UPDATE users SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0];
}

/** Live admins other than the built-in local one: the people who can still run this server. */
export async function countOtherLiveAdmins(db: Queryable, localUserId: string, excluding: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM users WHERE role = 'admin' AND deleted_at IS NULL AND id <> $1 AND id <> $2`,
    [localUserId, excluding],
  );
  return Number(rows[0]!.n);
}
