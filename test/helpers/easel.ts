import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { Pool } from '../../src/db/pool.js';
import { startEasel, type RunningEasel, type Roles, type StartOptions } from '../../src/runtime/easel.js';
import type { TaskResource } from '../../src/api/schemas/task.js';

export const testLogger = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export interface TestEasel extends RunningEasel {
  url: string;
  pool: Pool;
  config: Readonly<Config>;
}

/**
 * A real Easel on a loopback port, against the given database. `env` takes the same variables
 * as production, so tests exercise the real config path.
 */
export async function startTestEasel(
  databaseUrl: string,
  options: {
    roles?: Roles;
    env?: Record<string, string>;
    registry?: StartOptions['registry'];
    /** Storage of the test's own (a wrapper that fails on cue); the data dir's folder otherwise. */
    storage?: StartOptions['storage'];
    /** Where log lines go; silent (or TEST_LOG_LEVEL) by default. */
    log?: Logger;
  } = {},
): Promise<TestEasel> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-data-'));
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    EASEL_DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    EASEL_RETRY_BASE_MS: '50',
    EASEL_RETRY_MAX_MS: '200',
    EASEL_POLL_INTERVAL_MS: '200',
    ...options.env,
  });
  const running = await startEasel(config, options.log ?? testLogger(), {
    roles: options.roles ?? { api: true, worker: true },
    registry: options.registry,
    storage: options.storage,
  });
  return { ...running, url: running.url ?? '', pool: running.db.pool, config };
}

export async function api<T = TaskResource>(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(base + route, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON; keep the text
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

/**
 * Poll the API until the task reaches one of `statuses`; fails with the last state seen.
 * `headers` carry the caller's key where the task is not the local user's.
 */
export async function waitForStatus(
  base: string,
  taskId: string,
  statuses: string[],
  timeoutMs = 15_000,
  headers: Record<string, string> = {},
): Promise<TaskResource> {
  const deadline = Date.now() + timeoutMs;
  let last: TaskResource | undefined;
  while (Date.now() < deadline) {
    last = (await api(base, 'GET', `/v1/tasks/${taskId}`, undefined, headers)).body;
    if (statuses.includes(last.status)) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(
    `task ${taskId} did not reach ${statuses.join('|')} in ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
  );
}
