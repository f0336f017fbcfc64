import pg from 'pg';

// bigint columns (vtime, event ids) stay far below 2^53; numbers are simpler to use than strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export function createPool(connectionString: string, options: { max?: number } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    // A session stuck inside a transaction holds back vacuum and the event horizon; cut it off.
    options: '-c idle_in_transaction_session_timeout=60000',
  });
  // An idle client that loses its server emits here; without a handler the process would crash.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Run `work` in a transaction on one pooled client; roll back on any throw. With
 * `synchronousCommit: false` the commit does not wait for the disk: for writes whose loss in a
 * crash is harmless (a claim is simply queued again).
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  options: { synchronousCommit?: boolean } = {},
): Promise<T> {
  const client = await pool.connect();
  try {
    // One round trip for both statements when the commit is relaxed.
    await client.query(options.synchronousCommit === false ? 'BEGIN; SET LOCAL synchronous_commit = off' : 'BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
