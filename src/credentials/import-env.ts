import type { Logger } from 'pino';
import type { Pool } from '../db/pool.js';
import type { EnvCredential } from './env-credentials.js';
import type { SecretBox } from './secret-box.js';
import { insertCredential } from './store.js';

/**
 * Store the secrets found in the environment. Idempotent: a secret already stored is left as
 * it is (limits an admin changed stay), so every start can run it. Without a key (external
 * database, no EASEL_SECRET_KEY) it warns once and skips: Easel still starts.
 */
export async function importEnvCredentials(
  pool: Pool,
  box: SecretBox | undefined,
  found: readonly EnvCredential[],
  log: Logger,
): Promise<{ imported: number; present: number }> {
  if (found.length === 0) return { imported: 0, present: 0 };
  if (!box) {
    log.warn(
      { variables: found.map((credential) => credential.label.replace(/^env /, '')) },
      'provider secrets in the environment were not imported: set EASEL_SECRET_KEY (32 bytes, e.g. `openssl rand -hex 32`) to store secrets with an external DATABASE_URL',
    );
    return { imported: 0, present: 0 };
  }
  let imported = 0;
  for (const credential of found) {
    const result = await insertCredential(pool, box, credential);
    if (result.inserted) imported += 1;
  }
  const present = found.length - imported;
  log.info({ imported, already_stored: present }, 'imported provider credentials from the environment');
  return { imported, present };
}
