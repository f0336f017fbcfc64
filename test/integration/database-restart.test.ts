import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { api, startTestEasel, testLogger, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { eventually } from '../helpers/processes.js';

/** A server of its own, so restarting it disturbs no other test file. */
let root: string;
let server: EmbeddedPostgres;
let easel: TestEasel;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'easel-restart-'));
  await chmod(root, 0o755);
  server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), log: testLogger() });
  easel = await startTestEasel(server.connectionString);
});
afterAll(async () => {
  await easel?.stop();
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('a database restart', () => {
  it('loses no task: work queued before it finishes after it, and new work flows again', async () => {
    const before = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'spans the restart',
      width: 64,
      height: 64,
      provider_options: { delay_ms: 1500 },
    });
    await server.stop();
    // While it is down the API says so plainly, with when to come back, instead of a 500.
    const down = await api<{ code: string }>(easel.url, 'GET', '/v1/tasks');
    expect({ status: down.status, code: down.body.code, retryAfter: down.headers.get('retry-after') }).toEqual({
      status: 503,
      code: 'DATABASE_UNAVAILABLE',
      retryAfter: '5',
    });
    server = await startEmbeddedPostgres({
      dataDir: path.join(root, 'postgres'),
      port: server.port,
      log: testLogger(),
    });
    const client = new pg.Client({ connectionString: server.connectionString });
    await client.connect();
    await client.end();

    // The API recovers once its pool has replaced the connections the restart broke.
    const after = await eventually(
      'the API to accept work again',
      async () => {
        const response = await api(easel.url, 'POST', '/v1/tasks', {
          prompt: 'after the restart',
          width: 64,
          height: 64,
        });
        return response.status === 202 ? response.body : undefined;
      },
      20_000,
      200,
    );
    expect((await waitForStatus(easel.url, after.id, ['succeeded'], 30_000)).images).toHaveLength(1);
    // The LISTEN connection came back too, so wake-ups are immediate again, not only by polling.
    await eventually('the listener to reconnect', async () => easel.listener.connected, 20_000, 50);
    // The task that was running when the database went away ran to completion in the end.
    const survivor = await waitForStatus(easel.url, before.body.id, ['succeeded'], 90_000);
    expect(survivor.images).toHaveLength(1);
  }, 120_000);
});
