import { randomUUID } from 'node:crypto';
import type { Pool, Queryable } from '../db/pool.js';
import type { SecretBox } from './secret-box.js';

/**
 * SQL of the `credentials` table. Everything time-dependent (state, today's usage, the next
 * reset) is computed by the database from its own `now()`, the one clock of the system.
 * No function here returns the ciphertext except `readCredentialSecret`, which opens it.
 */

export const CredentialStates = {
  ACTIVE: 'active',
  COOLING_DOWN: 'cooling_down',
  DISABLED: 'disabled',
  /** Its daily limit is used up until `next_reset_at`. */
  EXHAUSTED: 'exhausted',
} as const;
export type CredentialState = (typeof CredentialStates)[keyof typeof CredentialStates];

export interface CredentialRow {
  id: string;
  provider: string;
  label: string;
  secret_last4: string;
  state: CredentialState;
  concurrency: number;
  /** Uses in the current usage day (0 once the day has turned, whatever the stored count). */
  used_today: number;
  daily_limit: number | null;
  daily_reset_utc_hour: number;
  next_reset_at: Date;
  cooldown_until: Date | null;
  disabled_reason: string | null;
  last_error_code: string | null;
  last_error_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** The usage day starts at the credential's reset hour (UTC); claims use the same function. */
const USAGE_DAY = `easel_usage_day(daily_reset_utc_hour)`;
const USED_TODAY = `(CASE WHEN usage_day = ${USAGE_DAY} THEN used_today ELSE 0 END)`;

/** When the credential's current usage day ends (a timestamptz). */
const NEXT_RESET = `((${USAGE_DAY} + 1 + make_interval(hours => daily_reset_utc_hour)) AT TIME ZONE 'UTC')`;

const COLUMNS = `
  id, provider, label, secret_last4, concurrency, daily_limit, daily_reset_utc_hour,
  ${USED_TODAY} AS used_today,
  ${NEXT_RESET} AS next_reset_at,
  easel_credential_state(credentials) AS state,
  cooldown_until, disabled_reason, last_error_code, last_error_at, last_used_at, created_at, updated_at`;

export interface NewCredential {
  provider: string;
  label: string;
  secret: string;
  concurrency?: number;
  dailyLimit?: number | null;
  dailyResetUtcHour?: number;
}

export type InsertResult = { inserted: true; row: CredentialRow } | { inserted: false; existingId: string };

/**
 * Seal and store a secret. The same secret for the same provider is never stored twice: a
 * second insert changes nothing (not even limits an admin set) and names the stored one.
 */
export async function insertCredential(pool: Pool, box: SecretBox, input: NewCredential): Promise<InsertResult> {
  const fingerprint = box.fingerprint(input.secret);
  const { rows } = await pool.query<CredentialRow>(
    `INSERT INTO credentials (id, provider, label, secret_ciphertext, secret_fingerprint, secret_last4,
                              concurrency, daily_limit, daily_reset_utc_hour)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (provider, secret_fingerprint) DO NOTHING
     RETURNING ${COLUMNS}`,
    [
      randomUUID(),
      input.provider,
      input.label,
      box.seal(input.secret),
      fingerprint,
      input.secret.slice(-4),
      input.concurrency ?? 1,
      input.dailyLimit ?? null,
      input.dailyResetUtcHour ?? 0,
    ],
  );
  if (rows[0]) return { inserted: true, row: rows[0] };
  const existing = await pool.query<{ id: string }>(
    'SELECT id FROM credentials WHERE provider = $1 AND secret_fingerprint = $2',
    [input.provider, fingerprint],
  );
  // A concurrent delete between the two statements: the conflict is gone, say so plainly.
  if (!existing.rows[0]) throw new Error('the credential was deleted while it was being added; try again');
  return { inserted: false, existingId: existing.rows[0].id };
}

export async function listCredentials(pool: Pool, provider?: string): Promise<CredentialRow[]> {
  const { rows } = await pool.query<CredentialRow>(
    `SELECT ${COLUMNS} FROM credentials WHERE ($1::text IS NULL OR provider = $1) ORDER BY provider, created_at, id`,
    [provider ?? null],
  );
  return rows;
}

export async function getCredential(pool: Pool, id: string): Promise<CredentialRow | undefined> {
  const { rows } = await pool.query<CredentialRow>(`SELECT ${COLUMNS} FROM credentials WHERE id = $1`, [id]);
  return rows[0];
}

export interface CredentialChanges {
  label?: string;
  concurrency?: number;
  dailyLimit?: number | null;
  dailyResetUtcHour?: number;
}

/** Only the fields given change; `dailyLimit: null` removes the limit. */
export async function updateCredential(
  pool: Pool,
  id: string,
  changes: CredentialChanges,
): Promise<CredentialRow | undefined> {
  const { rows } = await pool.query<CredentialRow>(
    `UPDATE credentials SET
       label = COALESCE($2, label),
       concurrency = COALESCE($3, concurrency),
       daily_limit = CASE WHEN $4::boolean THEN $5::integer ELSE daily_limit END,
       daily_reset_utc_hour = COALESCE($6, daily_reset_utc_hour),
       updated_at = now()
     WHERE id = $1
     RETURNING ${COLUMNS}`,
    [
      id,
      changes.label ?? null,
      changes.concurrency ?? null,
      changes.dailyLimit !== undefined,
      changes.dailyLimit ?? null,
      changes.dailyResetUtcHour ?? null,
    ],
  );
  return rows[0];
}

export async function disableCredential(pool: Pool, id: string, reason: string): Promise<CredentialRow | undefined> {
  const { rows } = await pool.query<CredentialRow>(
    `UPDATE credentials SET disabled_reason = $2, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, reason],
  );
  return rows[0];
}

/** Back in service: the disable reason and any cooldown are cleared. */
export async function enableCredential(pool: Pool, id: string): Promise<CredentialRow | undefined> {
  const { rows } = await pool.query<CredentialRow>(
    `UPDATE credentials SET disabled_reason = NULL, cooldown_until = NULL, updated_at = now()
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0];
}

export async function deleteCredential(pool: Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query('DELETE FROM credentials WHERE id = $1', [id]);
  return (rowCount ?? 0) > 0;
}

/** One credential pool's counts by state, and when capacity comes back by itself. */
export interface PoolStateCounts {
  provider: string;
  total: number;
  active: number;
  cooling_down: number;
  exhausted: number;
  disabled: number;
  /** Earliest return among credentials that wait for their cooldown to end. */
  next_cooldown_end: Date | null;
  /** Earliest return among credentials that wait for their daily reset (after any cooldown). */
  next_daily_reset: Date | null;
}

/**
 * Every pool's counts by state in one query, from the same state definition as the list view.
 * A credential both cooling down and at its limit comes back at the later of the two ends, and
 * is counted under what it then still waits for. A disabled one never comes back by itself.
 */
export async function countCredentialStates(pool: Queryable): Promise<PoolStateCounts[]> {
  const { rows } = await pool.query<PoolStateCounts>(
    `SELECT provider,
            count(*)::int AS total,
            count(*) FILTER (WHERE state = 'active')::int AS active,
            count(*) FILTER (WHERE state = 'cooling_down')::int AS cooling_down,
            count(*) FILTER (WHERE state = 'exhausted')::int AS exhausted,
            count(*) FILTER (WHERE state = 'disabled')::int AS disabled,
            min(cooldown_until) FILTER (WHERE state = 'cooling_down' AND NOT waits_for_reset) AS next_cooldown_end,
            min(next_reset_at) FILTER (WHERE state IN ('cooling_down', 'exhausted') AND waits_for_reset) AS next_daily_reset
     FROM (SELECT c.*, (daily_limit IS NOT NULL AND used_today >= daily_limit
                        AND (cooldown_until IS NULL OR cooldown_until <= next_reset_at)) AS waits_for_reset
           FROM (SELECT ${COLUMNS} FROM credentials) c) c
     GROUP BY provider`,
  );
  return rows;
}

/**
 * Running tasks per credential, counting only live workers' (as claims do): a dead worker's
 * task holds no slot, it is about to be rescued.
 */
export async function countCredentialsInUse(
  pool: Queryable,
  deadAfterMs: number,
  id?: string,
): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ credential_id: string; in_use: number }>(
    `SELECT t.credential_id, count(*)::int AS in_use
     FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
     WHERE t.status = 'running' AND t.credential_id IS NOT NULL AND ($2::uuid IS NULL OR t.credential_id = $2)
       AND easel_worker_alive(w.last_seen_at, $1::double precision)
     GROUP BY t.credential_id`,
    [deadAfterMs, id ?? null],
  );
  return new Map(rows.map((row) => [row.credential_id, row.in_use]));
}

/** The secret in clear, for the adapter about to call the provider; never log or return it. */
export async function readCredentialSecret(
  pool: Pool,
  box: SecretBox,
  id: string,
): Promise<{ label: string; secret: string } | undefined> {
  const { rows } = await pool.query<{ label: string; secret_ciphertext: Buffer }>(
    'SELECT label, secret_ciphertext FROM credentials WHERE id = $1',
    [id],
  );
  return rows[0] ? { label: rows[0].label, secret: box.open(rows[0].secret_ciphertext) } : undefined;
}

/**
 * What an attempt learned about its credential. The writes are not fenced by the task's lease:
 * what the provider said about the credential is true whoever holds the task now.
 */
export type CredentialOutcome =
  /** 429 or quota: rest for `ms`, or until the next daily reset when `ms` is undefined. */
  | { kind: 'cool_down'; code: string; ms: number | undefined }
  /** The provider refused the credential: out of service until an admin enables it again. */
  | { kind: 'disable'; code: string; reason: string }
  /** Any other provider failure: recorded as the credential's last error, nothing else. */
  | { kind: 'note'; code: string };

export async function recordCredentialOutcome(pool: Pool, id: string, outcome: CredentialOutcome): Promise<void> {
  // A longer cooldown already running is kept; a disable reason already set (by an admin) too.
  await pool.query(
    `UPDATE credentials SET
       cooldown_until = CASE WHEN $2 = 'cool_down'
         THEN greatest(cooldown_until, COALESCE(now() + make_interval(secs => $3::double precision / 1000), ${NEXT_RESET}))
         ELSE cooldown_until END,
       disabled_reason = CASE WHEN $2 = 'disable' THEN COALESCE(disabled_reason, $4) ELSE disabled_reason END,
       last_error_code = $5, last_error_at = now(), updated_at = now()
     WHERE id = $1`,
    [
      id,
      outcome.kind,
      outcome.kind === 'cool_down' ? (outcome.ms ?? null) : null,
      outcome.kind === 'disable' ? outcome.reason : null,
      outcome.code,
    ],
  );
}
