import { uuidv7 } from 'uuidv7';
import type { Logger } from 'pino';
import type { Pool } from '../db/pool.js';
import { inTransaction } from '../db/transaction.js';
import { hashKey, KEY_PREFIX } from './api-keys.js';

/**
 * EASEL_ADMIN_KEY: make sure that key exists and belongs to an admin, creating the user `admin`
 * the first time. Idempotent and safe from several processes at once (an advisory lock around
 * the check and the inserts). A key revoked since stays revoked: the variable never resurrects it.
 */
export async function ensureAdminKey(pool: Pool, key: string, log: Logger): Promise<void> {
  const hash = hashKey(key);
  await inTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('easel:admin-key', 0))`);
    const { rows } = await client.query<{ revoked: boolean }>(
      'SELECT revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_hash = $1',
      [hash],
    );
    if (rows[0]) {
      if (rows[0].revoked) log.warn('EASEL_ADMIN_KEY was revoked; it stays revoked (remove the variable)');
      return;
    }
    const userId = uuidv7();
    await client.query(`INSERT INTO users (id, name, role) VALUES ($1, 'admin', 'admin')`, [userId]);
    await client.query(
      `INSERT INTO api_keys (id, user_id, key_hash, display, name) VALUES ($1, $2, $3, $4, 'EASEL_ADMIN_KEY')`,
      [uuidv7(), userId, hash, key.slice(0, KEY_PREFIX.length + 8)],
    );
    log.info({ user: userId }, 'created the admin user for EASEL_ADMIN_KEY');
  });
}
