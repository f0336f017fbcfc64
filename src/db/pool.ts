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
  // A client that loses its server (a restart, a network cut) emits 'error'; unhandled, that
  // would crash the process. The query that was using it fails on its own, and the pool
  // replaces the client, so there is nothing else to do here.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}
