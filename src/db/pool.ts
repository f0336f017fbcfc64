import pg from 'pg';

// bigint columns (vtime, event ids) stay far below 2^53; numbers are simpler to use than strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/** How long opening a connection may take: a server that does not answer is as good as down. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Idle time before the first TCP keepalive probe, so a half-open socket is found in minutes, not hours. */
const KEEPALIVE_DELAY_MS = 10_000;
/**
 * How every connection of ours is opened, pooled or not (the LISTEN and NOTIFY connections
 * too): a bounded connect, and TCP keepalive so a peer that vanished is noticed.
 */
export const CONNECTION_SETTINGS = {
  connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  keepAlive: true,
  keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
} as const;
/** The client waits this much longer than the server, so the server's clearer error wins when it can. */
const CLIENT_TIMEOUT_MARGIN_MS = 2_000;
/** Longest a statement may run on a pool made without an explicit limit. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

export interface PoolOptions {
  max?: number;
  /**
   * Server-side `statement_timeout`, and (plus a margin) the client-side `query_timeout` that
   * also ends a query stuck on a connection that went silent. A query that times out on the
   * client is released with its error, so the pool discards that connection.
   */
  statementTimeoutMs?: number;
}

export function createPool(connectionString: string, options: PoolOptions = {}): pg.Pool {
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    ...CONNECTION_SETTINGS,
    query_timeout: statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
    // A session stuck inside a transaction holds back vacuum and the event horizon; cut it off.
    options: `-c idle_in_transaction_session_timeout=60000 -c statement_timeout=${statementTimeoutMs}`,
  });
  // A client that loses its server (a restart, a network cut) emits 'error'; unhandled, that
  // would crash the process. The query that was using it fails on its own, and the pool
  // replaces the client, so there is nothing else to do here.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/**
 * Run work that must not be cut short by the pool's timeouts (migrations: an index build or a
 * wait for another process's migration lock can take minutes) on a client of its own. The
 * client is destroyed afterwards rather than returned with its limits lifted.
 */
export async function withUntimedClient<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // query_timeout is read per query from the connection parameters; 0 there means "none".
  const parameters = (client as unknown as { connectionParameters: { query_timeout?: number } }).connectionParameters;
  parameters.query_timeout = 0;
  try {
    await client.query('SET statement_timeout = 0');
    return await work(client);
  } finally {
    client.release(true);
  }
}

/**
 * Errors that mean "the database is not reachable right now" rather than "this statement is
 * wrong": a write that failed this way may succeed when tried again later.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const { code, message, syscall } = (error ?? {}) as { code?: unknown; message?: unknown; syscall?: unknown };
  // A Unix socket that is gone: the local server is down.
  if (code === 'ENOENT' && syscall === 'connect') return true;
  if (typeof code === 'string') {
    // Class 08: connection exceptions; 57P01–57P03: shutdown / cannot connect now;
    // 53300: too many connections; 57014: statement canceled by its timeout.
    if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '57014'].includes(code)) return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code))
      return true;
  }
  return (
    typeof message === 'string' &&
    /Connection terminated|Query read timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
      message,
    )
  );
}
