import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { loadConfig } from '../config/config.js';
import { createPool } from '../db/pool.js';
import { Listener } from '../db/listener.js';
import { NO_HINTS } from '../db/notifier.js';
import { EventHub } from '../events/hub.js';
import { createProviderRegistry } from '../providers/index.js';
import { createLocalStorage } from '../storage/local.js';
import { TaskService } from '../tasks/service.js';
import { CredentialAvailability } from '../credentials/availability.js';
import { CredentialService } from '../credentials/service.js';
import { buildApp } from './app.js';

/**
 * The OpenAPI document as the API serves it, built without a database: the app is built with
 * its real routes, but nothing is started and no route runs, so the pool never connects.
 */
export async function buildOpenApiDocument(env: Record<string, string> = {}): Promise<unknown> {
  const config = loadConfig(env);
  const log = pino({ level: 'silent' });
  // Never connected: building routes issues no query, and the app is closed without serving.
  const pool = createPool('postgres://easel@127.0.0.1:1/unused');
  const listener = new Listener('postgres://easel@127.0.0.1:1/unused', [], log);
  const registry = createProviderRegistry();
  const hub = new EventHub(pool, listener, log);
  const app = await buildApp({
    config,
    pool,
    registry,
    storage: createLocalStorage(path.join(os.tmpdir(), 'easel-openapi-unused')),
    hub,
    tasks: new TaskService(pool, registry, config, NO_HINTS, hub),
    credentials: new CredentialService(pool, undefined, { hints: NO_HINTS, registry, deadAfterMs: 30_000 }),
    availability: new CredentialAvailability(pool, false),
    log,
  });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
    await pool.end();
  }
}

// `tsx src/api/openapi-document.ts` prints the document (for `npm run lint:openapi`).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // With ADMIN_SECRET set, so that the optional compatibility route is checked too.
  const env = { ADMIN_SECRET: 'placeholder-admin-secret-for-the-document' };
  process.stdout.write(`${JSON.stringify(await buildOpenApiDocument(env), null, 2)}\n`);
}
