import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migrate } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { advanceTransactionIdsTo } from './xids.js';

export const TEMPLATE_DATABASE = 'easel_template';

/**
 * Every run starts just below a power of ten of transaction ids, so the whole suite crosses
 * 99,999 → 100,000 early on: code that compares or sorts transaction ids as text, or assumes
 * small ones, fails somewhere in the suite instead of only on a production database that has
 * aged. (test/integration/events-xid-order.test.ts crosses the next boundaries on purpose.)
 */
const AGED_TRANSACTION_ID = 100_000n - 3_000n;

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

/** One real PostgreSQL for the whole run, and a migrated template database to clone per file. */
export default async function setup(project: TestProject) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'easel-test-'));
  // As root, PostgreSQL runs as the `postgres` user, which must be able to enter this folder.
  await chmod(root, 0o755);
  const server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), log: pino({ level: 'silent' }) });
  const admin = new pg.Client({ connectionString: server.connectionString });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await admin.end();
  const templateUrl = new URL(server.connectionString);
  templateUrl.pathname = `/${TEMPLATE_DATABASE}`;
  const pool = createPool(templateUrl.toString(), { max: 1 });
  await migrate(pool);
  await advanceTransactionIdsTo(pool, AGED_TRANSACTION_ID);
  await pool.end();
  project.provide('postgresUrl', server.connectionString);
  return async () => {
    await server.stop();
    await rm(root, { recursive: true, force: true });
  };
}
