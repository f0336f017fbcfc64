import type { Pool } from '../db/pool.js';
import type { CachedToken, TokenCache } from '../providers/token-cache.js';
import { SecretBoxError, type SecretBox } from './secret-box.js';

/**
 * The `credential_tokens` table (migration 0019): the token cache of providers that sign in
 * (NovelAI), sealed with the credentials' SecretBox. The database's clock says how long a
 * token has left, as it does for every other time in Easel.
 */
export function createCredentialTokenStore(pool: Pool, box: SecretBox | undefined): TokenCache {
  return {
    async read(credentialId) {
      if (!box) return undefined;
      const { rows } = await pool.query<{
        token_ciphertext: Buffer;
        expires_at: Date | null;
        remaining_ms: number | null;
      }>(
        `SELECT token_ciphertext, expires_at,
                (extract(epoch FROM expires_at - now()) * 1000)::float8 AS remaining_ms
         FROM credential_tokens WHERE credential_id = $1`,
        [credentialId],
      );
      const row = rows[0];
      if (!row) return undefined;
      let token: string;
      try {
        token = box.open(row.token_ciphertext);
      } catch (error) {
        if (error instanceof SecretBoxError) return { damaged: error.message };
        throw error;
      }
      return { token, expiresAt: row.expires_at, remainingMs: row.remaining_ms } satisfies CachedToken;
    },
    async write(credentialId, token, expiresAt) {
      // Without a key there is no credential either; nothing to cache.
      if (!box) return;
      // A credential deleted meanwhile: nothing to attach the token to, and nothing is written.
      await pool.query(
        `INSERT INTO credential_tokens (credential_id, token_ciphertext, expires_at)
         SELECT id, $2, $3 FROM credentials WHERE id = $1
         ON CONFLICT (credential_id) DO UPDATE
           SET token_ciphertext = EXCLUDED.token_ciphertext, expires_at = EXCLUDED.expires_at, updated_at = now()`,
        [credentialId, box.seal(token), expiresAt],
      );
    },
  };
}

export const TokenStates = {
  /** No token cached: the next attempt signs in (or the credential is a token itself). */
  NONE: 'none',
  VALID: 'valid',
  /** Under 10 days left: the next attempt renews it. */
  EXPIRING: 'expiring',
  EXPIRED: 'expired',
  /** The entry does not open (another EASEL_SECRET_KEY, or changed): the next attempt signs in again. */
  DAMAGED: 'damaged',
} as const;
export type TokenState = (typeof TokenStates)[keyof typeof TokenStates];

export interface TokenStatus {
  state: TokenState;
  expires_at: Date | null;
  /** Whole days left (0 on the last day); null without a known expiry. */
  days_left: number | null;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const RENEW_BELOW_DAYS = 10;

/** Token state of the given credentials (those of providers that sign in), by credential id. */
export async function readTokenStatuses(
  pool: Pool,
  box: SecretBox | undefined,
  credentialIds: readonly string[],
): Promise<Map<string, TokenStatus>> {
  const statuses = new Map<string, TokenStatus>(
    credentialIds.map((id) => [id, { state: TokenStates.NONE, expires_at: null, days_left: null }]),
  );
  if (credentialIds.length === 0) return statuses;
  const { rows } = await pool.query<{
    credential_id: string;
    token_ciphertext: Buffer;
    expires_at: Date | null;
    remaining_ms: number | null;
  }>(
    `SELECT credential_id, token_ciphertext, expires_at,
            (extract(epoch FROM expires_at - now()) * 1000)::float8 AS remaining_ms
     FROM credential_tokens WHERE credential_id = ANY($1::uuid[])`,
    [credentialIds],
  );
  for (const row of rows) {
    const daysLeft = row.remaining_ms === null ? null : Math.max(0, Math.floor(row.remaining_ms / DAY_MS));
    statuses.set(row.credential_id, {
      state: tokenState(box, row.token_ciphertext, row.remaining_ms),
      expires_at: row.expires_at,
      days_left: daysLeft,
    });
  }
  return statuses;
}

function tokenState(box: SecretBox | undefined, sealed: Buffer, remainingMs: number | null): TokenState {
  try {
    if (!box) return TokenStates.DAMAGED;
    box.open(sealed);
  } catch {
    return TokenStates.DAMAGED;
  }
  if (remainingMs === null) return TokenStates.VALID;
  if (remainingMs <= 0) return TokenStates.EXPIRED;
  return remainingMs < RENEW_BELOW_DAYS * DAY_MS ? TokenStates.EXPIRING : TokenStates.VALID;
}
