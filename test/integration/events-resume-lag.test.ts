import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialAvailability } from '../../src/credentials/availability.js';
import { CredentialService } from '../../src/credentials/service.js';
import { buildApp } from '../../src/api/app.js';
import type { Listener } from '../../src/db/listener.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { EventHub } from '../../src/events/hub.js';
import { createProviderRegistry } from '../../src/providers/index.js';
import { createLocalStorage } from '../../src/storage/local.js';
import { TaskService } from '../../src/tasks/service.js';
import { api, startTestEasel, testLogger, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase } from '../helpers/database.js';
import { openSse } from '../helpers/sse.js';

/**
 * A client moves between API processes whose hubs follow the event log at different paces.
 * The lagging process's hub hears no NOTIFY and polls once an hour, so it reads the log only
 * when the test calls `catchUp()`: its cursor lags by exactly what the test lets happen.
 */
let easel: TestEasel;
let lagging: { app: FastifyInstance; hub: EventHub; url: string };
let keepFollowing: () => void;

beforeAll(async () => {
  const url = await createTestDatabase();
  easel = await startTestEasel(url);
  const silentListener = new EventEmitter() as unknown as Listener;
  const hub = new EventHub(easel.pool, silentListener, testLogger(), 3_600_000);
  hub.start();
  const registry = createProviderRegistry();
  const app = await buildApp({
    config: easel.config,
    pool: easel.pool,
    registry,
    storage: createLocalStorage(os.tmpdir()),
    hub,
    tasks: new TaskService(easel.pool, registry, easel.config, NO_HINTS),
    credentials: new CredentialService(easel.pool, undefined, {
      hints: NO_HINTS,
      registry,
      deadAfterMs: easel.config.worker.deadAfterMs,
    }),
    availability: new CredentialAvailability(easel.pool, false),
    log: testLogger(),
  });
  lagging = { app, hub, url: await app.listen({ host: '127.0.0.1', port: 0 }) };
  // A subscriber of its own keeps the hub following (not skipping ahead) from here on.
  keepFollowing = (await hub.subscribe({ deliver: () => {} })).unsubscribe;
});
afterAll(async () => {
  keepFollowing?.();
  await lagging?.app.close();
  lagging?.hub.close();
  await easel?.stop();
});

describe('resuming on an API process whose hub lags behind Last-Event-ID', () => {
  it('sends no event the client already has, and every event after it once', async () => {
    // The client watches a task to its end on the up-to-date process.
    const first = await openSse(`${easel.url}/v1/events`);
    await first.waitFor((messages) => messages.some((m) => m.event === 'connected'));
    const { body: task } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'lag', width: 64, height: 64 });
    await first.waitFor(() => first.updates().some((u) => u.task_id === task.id && u.status === 'succeeded'));
    first.close();
    const seen = first.updates().map((u) => u.event_id);
    const lastSeen = seen.at(-1)!;

    // It reconnects to the lagging process, whose hub has read none of that yet.
    const resumed = await openSse(`${lagging.url}/v1/events`, { 'last-event-id': lastSeen });
    await resumed.waitFor((messages) => messages.some((m) => m.event === 'connected'));
    const { body: next } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'after', width: 64, height: 64 });
    // Now the hub reads everything since its old cursor: the client's old events and the new ones.
    for (let i = 0; i < 200 && !resumed.updates().some((u) => u.task_id === next.id && u.status === 'succeeded'); i++) {
      lagging.hub.catchUp();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    resumed.close();

    const ids = resumed.updates().map((u) => u.event_id);
    expect(ids.filter((id) => seen.includes(id))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(
      resumed
        .updates()
        .filter((u) => u.task_id === next.id)
        .map((u) => u.type),
    ).toEqual(expect.arrayContaining(['task:queued', 'task:succeeded']));
  });
});
