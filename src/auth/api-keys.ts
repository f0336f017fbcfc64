import { createHash, randomBytes } from 'node:crypto';
import { uuidv7 } from 'uuidv7';
import type { Queryable } from '../db/pool.js';

/**
 * API keys: `easel_sk_` + 43 base64url characters (256 random bits). Only the SHA-256 of a key is
 * stored; the key itself is shown once, when it is made. The first 8 characters after the prefix
 * are kept in clear (`display`) so people can tell their keys apart.
 */
export const KEY_PREFIX = 'easel_sk_';
const KEY_PATTERN = /^easel_sk_[A-Za-z0-9_-]{43}$/;

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export function generateKey(): { key: string; hash: string; display: string } {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, hash: hashKey(key), display: key.slice(0, KEY_PREFIX.length + 8) };
}

export const looksLikeKey = (value: string): boolean => KEY_PATTERN.test(value);

export interface ApiKeyRow {
  id: string;
  user_id: string;
  display: string;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export async function createApiKey(
  db: Queryable,
  userId: string,
  name: string,
): Promise<{ row: ApiKeyRow; key: string }> {
  const { key, hash, display } = generateKey();
  const { rows } = await db.query<ApiKeyRow>(
    `INSERT INTO api_keys (id, user_id, key_hash, display, name) VALUES ($1, $2, $3, $4, $5)
     RETURNING id, user_id, display, name, created_at, last_used_at, revoked_at`,
    [uuidv7(), userId, hash, display, name],
  );
  return { row: rows[0]!, key };
}

/** Who a request acts as: a user and their role, and the key when one was sent. */
export interface Principal {
  userId: string;
  role: 'user' | 'admin';
  keyId: string | null;
}

/**
 * The live key's user, or undefined for an unknown, revoked or deleted-user key. Read on every
 * request, never cached, so a revocation holds at once on every API process. `last_used_at` is
 * written at most once a minute per key, keeping authenticated reads read-only in the common case.
 */
export async function authenticateKey(db: Queryable, key: string): Promise<Principal | undefined> {
  if (!looksLikeKey(key)) return undefined;
  const { rows } = await db.query<{ key_id: string; user_id: string; role: 'user' | 'admin'; stale: boolean }>({
    name: 'easel_authenticate_key',
    text: `SELECT k.id AS key_id, u.id AS user_id, u.role,
                  (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS stale
           FROM api_keys k JOIN users u ON u.id = k.user_id
           WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.deleted_at IS NULL`,
    values: [hashKey(key)],
  });
  const row = rows[0];
  if (!row) return undefined;
  if (row.stale) {
    await db.query('UPDATE api_keys SET last_used_at = now() WHERE id = $1', [row.key_id]);
  }
  return { userId: row.user_id, role: row.role, keyId: row.key_id };
}
