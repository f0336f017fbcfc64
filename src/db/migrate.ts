import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { withUntimedClient, type Pool, type PoolClient } from './pool.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
// Any constant works; it only has to be the same in every Easel process.
const MIGRATION_LOCK = 7_415_001;

export async function listMigrations(): Promise<string[]> {
  return (await readdir(MIGRATIONS_DIR)).filter((name) => name.endsWith('.sql')).sort();
}

/**
 * Apply pending migrations in order, each in its own transaction. An advisory lock makes
 * concurrent starts (several API and worker processes) wait for one another instead of racing.
 */
export function migrate(pool: Pool, log?: Logger): Promise<string[]> {
  // Migrations may outlast the pool's statement timeout (index builds, waiting for the lock).
  return withUntimedClient(pool, (client) => applyPending(client, log));
}

async function applyPending(client: PoolClient, log?: Logger): Promise<string[]> {
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ version: string }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    const ran: string[] = [];
    for (const file of await listMigrations()) {
      const version = file.replace(/\.sql$/, '');
      if (applied.has(version)) continue;
      const sql = await readFile(MIGRATIONS_DIR + file, 'utf8');
      try {
        await client.query('BEGIN');
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
      }
      log?.info({ migration: version }, 'applied migration');
      ran.push(version);
    }
    return ran;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
  }
}

/** Versions the code knows but the database has not applied; empty when up to date. */
export async function pendingMigrations(pool: Pool): Promise<string[]> {
  const known = (await listMigrations()).map((file) => file.replace(/\.sql$/, ''));
  const { rows } = await pool
    .query<{ version: string }>(
      `SELECT version FROM schema_migrations WHERE to_regclass('schema_migrations') IS NOT NULL`,
    )
    .catch(() => ({ rows: [] as { version: string }[] }));
  const applied = new Set(rows.map((row) => row.version));
  return known.filter((version) => !applied.has(version));
}
