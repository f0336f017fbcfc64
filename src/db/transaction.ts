import type { Pool, PoolClient } from './pool.js';

/**
 * Run `work` in one transaction on a client of its own: committed when it returns, rolled back
 * when it throws (the error is rethrown). A client whose rollback failed is discarded, not
 * returned to the pool in an unknown state.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Thrown inside `inTransaction` to roll back and hand a value out instead of an error. */
export class Rollback<T> extends Error {
  constructor(readonly value: T) {
    super('rolled back');
  }
}
