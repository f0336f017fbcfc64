import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { startEmbeddedPostgres } from '../db/embedded-postgres.js';
import { createPool, type Pool } from '../db/pool.js';

export interface Database {
  connectionString: string;
  pool: Pool;
  close(): Promise<void>;
}

const EMBEDDED_DATABASE = 'easel';

/**
 * DATABASE_URL when set; otherwise a real PostgreSQL of our own under the data directory,
 * with an `easel` database created on first start.
 */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'embeddedPostgresPort' | 'dbStatementTimeoutMs'>,
  log: Logger,
  options: { poolSize?: number } = {},
): Promise<Database> {
  let connectionString = config.databaseUrl;
  let stopEmbedded = async () => {};
  if (!connectionString) {
    const dataDir = path.join(config.dataDir, 'postgres');
    const server = await startEmbeddedPostgres({
      dataDir,
      port: config.embeddedPostgresPort,
      log: log.child({ component: 'postgres' }),
    });
    stopEmbedded = () => server.stop();
    try {
      connectionString = await ensureDatabase(server.connectionString, EMBEDDED_DATABASE);
    } catch (error) {
      await server.stop();
      throw error;
    }
    log.info(
      { dataDir, port: server.port, owned: server.owned },
      'using embedded PostgreSQL because DATABASE_URL is not set',
    );
  }
  const pool = createPool(connectionString, { max: options.poolSize, statementTimeoutMs: config.dbStatementTimeoutMs });
  return {
    connectionString,
    pool,
    async close() {
      await pool.end().catch(() => undefined);
      await stopEmbedded();
    },
  };
}

/** Create `name` on the server if it is missing; returns its connection string. */
async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`).catch((error: { code?: string }) => {
        // Another Easel process created it a moment ago.
        if (error.code !== '42P04') throw error;
      });
    }
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
