import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../config/env.js';
import { parseSecretKey, SecretBox, SECRET_KEY_BYTES } from './secret-box.js';

export const SECRET_KEY_FILE = 'secret.key';

/**
 * The key that seals provider secrets. EASEL_SECRET_KEY wins. Without it, the embedded
 * single-machine mode keeps a generated key in `<dataDir>/secret.key` (0600, created once, never
 * replaced: replacing it would make every stored secret unreadable). With an external database
 * and no key there is no box: several machines could not share a key file, so storing secrets
 * is refused (undefined) rather than sealed under a key only one machine has.
 */
export async function openSecretBox(
  config: { secretKey: Buffer | undefined; databaseUrl: string | undefined; dataDir: string },
  log: Logger,
): Promise<SecretBox | undefined> {
  if (config.secretKey) return new SecretBox(config.secretKey);
  if (config.databaseUrl !== undefined) return undefined;
  const file = path.join(config.dataDir, SECRET_KEY_FILE);
  const key = randomBytes(SECRET_KEY_BYTES);
  try {
    // 'wx': never overwrite; if two processes race, one writes and both read the winner's key.
    await writeFile(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    log.info(
      { path: file },
      'generated a key for provider secrets and stored it in this file (mode 0600): back it up with the database, or set EASEL_SECRET_KEY',
    );
    return new SecretBox(key);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stored = parseSecretKey(await readFile(file, 'utf8'));
  if (!stored) {
    throw new ConfigError(
      `${file} does not hold a 32-byte key (64 hex digits); restore it from a backup, or set EASEL_SECRET_KEY`,
    );
  }
  return new SecretBox(stored);
}
