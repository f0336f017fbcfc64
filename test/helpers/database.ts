import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool.js';
import { TEMPLATE_DATABASE } from './global-setup.js';

/** A fresh, migrated database of its own for the calling test file. */
export async function createTestDatabase(): Promise<string> {
  const serverUrl = inject('postgresUrl');
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createTestPool(url: string): Promise<Pool> {
  return createPool(url, { max: 5 });
}

/** Users beyond the built-in local one, for fairness and ownership tests. */
export async function createUser(pool: Pool, name: string): Promise<string> {
  const id = crypto.randomUUID();
  await pool.query('INSERT INTO users (id, name) VALUES ($1, $2)', [id, name]);
  return id;
}

/** One statement on a connection of its own, for servers the test starts itself. */
export async function queryOnce(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}
