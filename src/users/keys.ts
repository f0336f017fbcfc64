import type { Queryable } from '../db/pool.js';
import type { ApiKeyRow } from '../auth/api-keys.js';

/** Key listing and revocation; making keys is createApiKey in src/auth/api-keys.ts. */

const COLUMNS = 'id, user_id, display, name, created_at, last_used_at, revoked_at';

/** A user's keys, revoked ones too (with `revoked_at`), oldest first. Never the hash. */
export async function listKeys(db: Queryable, userId: string): Promise<ApiKeyRow[]> {
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at, id`,
    [userId],
  );
  return rows;
}

export async function findKey(db: Queryable, id: string): Promise<ApiKeyRow | undefined> {
  const { rows } = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
  return rows[0];
}

/**
 * Revoke once: a second revocation keeps the first time. authenticateKey reads `revoked_at` on
 * every request, so this holds on every API process from the commit on.
 */
export async function revokeKey(db: Queryable, id: string): Promise<ApiKeyRow | undefined> {
  const { rows } = await db.query<ApiKeyRow>(
    `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0];
}
