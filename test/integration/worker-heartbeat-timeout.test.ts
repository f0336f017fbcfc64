import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from '../../src/db/pool.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { startTestEasel, type TestEasel } from '../helpers/easel.js';
import { eventually } from '../helpers/processes.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

let pool: Pool;
let proxy: TcpProxy;
let easel: TestEasel;

beforeAll(async () => {
  const url = await createTestDatabase();
  pool = await createTestPool(url);
  proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(url).port) });
  // Only the worker talks through the proxy; the test reads the database directly.
  easel = await startTestEasel(proxy.through(url), {
    roles: { api: false, worker: true },
    env: {
      EASEL_HEARTBEAT_MS: '300',
      EASEL_WORKER_DEAD_AFTER_MS: '20000',
      EASEL_SHUTDOWN_GRACE_MS: '1000',
      EASEL_DB_STATEMENT_TIMEOUT_MS: '1500',
    },
  });
});
afterAll(async () => {
  // Closing the proxy first ends the stalled sockets, so nothing waits on them.
  await proxy?.close();
  await easel?.stop();
  await pool?.end();
});

const lastSeen = async (): Promise<number> =>
  (
    await pool.query<{ last_seen_at: Date }>('SELECT last_seen_at FROM workers WHERE id = $1', [easel.worker!.id])
  ).rows[0]!.last_seen_at.getTime();

describe('a heartbeat on a connection that went silent', () => {
  it('times out, and heartbeats resume on a new connection once the network flows again', async () => {
    const first = await lastSeen();
    await eventually('a heartbeat through the proxy', async () => (await lastSeen()) > first, 10_000, 50);

    proxy.freeze();
    await sleep(1000);
    const frozen = await lastSeen();
    await sleep(1000);
    expect(await lastSeen(), 'a heartbeat got through a frozen proxy').toBe(frozen);

    // The connections the freeze caught stay silent for good (half-open): only timeouts free
    // the heartbeat from them, and the next tick must not wait behind a stuck one.
    proxy.thaw();
    await eventually('heartbeats to resume', async () => (await lastSeen()) > frozen, 20_000, 100);
  }, 40_000);
});
