import { createHash, randomBytes } from 'node:crypto';
import { uuidv7 } from 'uuidv7';
import type { Queryable } from '../db/pool.js';

/**
 * Worker tokens: `easel_wk_` + 43 base64url characters (256 random bits), for remote workers
 * (GPU machines that reach Easel only over HTTP). Stored as SHA-256 only and shown once, like API
 * keys; a different prefix so neither can be mistaken for the other, by people or by the auth hook.
 */
export const WORKER_TOKEN_PREFIX = 'easel_wk_';
const TOKEN_PATTERN = /^easel_wk_[A-Za-z0-9_-]{43}$/;

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export const looksLikeWorkerToken = (value: string): boolean => TOKEN_PATTERN.test(value);

export interface WorkerTokenRow {
  id: string;
  label: string;
  display: string;
  created_by: string | null;
  created_at: Date;
  revoked_at: Date | null;
  last_seen_at: Date | null;
}

const COLUMNS = 'id, label, display, created_by, created_at, revoked_at, last_seen_at';

export async function createWorkerToken(
  db: Queryable,
  label: string,
  createdBy: string,
): Promise<{ row: WorkerTokenRow; token: string }> {
  const token = WORKER_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const { rows } = await db.query<WorkerTokenRow>(
    `INSERT INTO worker_tokens (id, label, token_sha256, display, created_by) VALUES ($1, $2, $3, $4, $5)
     RETURNING ${COLUMNS}`,
    [uuidv7(), label, hashToken(token), token.slice(0, WORKER_TOKEN_PREFIX.length + 8), createdBy],
  );
  return { row: rows[0]!, token };
}

export async function listWorkerTokens(db: Queryable): Promise<WorkerTokenRow[]> {
  const { rows } = await db.query<WorkerTokenRow>(`SELECT ${COLUMNS} FROM worker_tokens ORDER BY created_at, id`);
  return rows;
}

/** Revoke (idempotent: a revoked token keeps its first revocation time); undefined if unknown. */
export async function revokeWorkerToken(db: Queryable, id: string): Promise<WorkerTokenRow | undefined> {
  const { rows } = await db.query<WorkerTokenRow>(
    `UPDATE worker_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0];
}

/** The caller of a worker route: the token it presented. */
export interface WorkerPrincipal {
  tokenId: string;
  label: string;
}

/**
 * The live token, or undefined for an unknown or revoked one. Read on every request, never
 * cached, so a revocation holds at once on every API process. `last_seen_at` is written at most
 * once a minute per token.
 */
export async function authenticateWorkerToken(db: Queryable, token: string): Promise<WorkerPrincipal | undefined> {
  if (!looksLikeWorkerToken(token)) return undefined;
  const { rows } = await db.query<{ id: string; label: string; stale: boolean }>({
    name: 'easel_authenticate_worker_token',
    text: `SELECT id, label, (last_seen_at IS NULL OR last_seen_at < now() - interval '1 minute') AS stale
           FROM worker_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL`,
    values: [hashToken(token)],
  });
  const row = rows[0];
  if (!row) return undefined;
  if (row.stale) await db.query('UPDATE worker_tokens SET last_seen_at = now() WHERE id = $1', [row.id]);
  return { tokenId: row.id, label: row.label };
}

/** Whether the token is still live: a long poll asks again before it claims. */
export async function workerTokenLive(db: Queryable, tokenId: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM worker_tokens WHERE id = $1 AND revoked_at IS NULL', [tokenId]);
  return rows.length > 0;
}
