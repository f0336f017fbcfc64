import path from 'node:path';
import { readChoice, readHost, readInt, readLimits, readString, readUrl, type Env } from './env.js';

export type LogFormat = 'auto' | 'json' | 'pretty';

/** Everything Easel reads from its environment, parsed once at start. `.env.example` documents each. */
export interface Config {
  host: string;
  port: number;
  /** Base for absolute URLs in answers (image links); unset = relative URLs. */
  publicUrl: string | undefined;
  dataDir: string;
  /** External PostgreSQL; unset = embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | undefined;
  embeddedPostgresPort: number | undefined;
  logLevel: string;
  logFormat: LogFormat;
  bodyLimitBytes: number;
  defaultProvider: string;
  queue: QueueConfig;
  worker: WorkerConfig;
  sseHeartbeatMs: number;
  waitMaxSeconds: number;
}

export interface QueueConfig {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Global cap on running tasks per provider, across every worker. */
  providerConcurrency: Record<string, number>;
  defaultProviderConcurrency: number;
}

export interface WorkerConfig {
  /** Tasks one worker process runs at once. */
  concurrency: number;
  heartbeatMs: number;
  /** A worker silent this long is presumed dead and its tasks are queued again. */
  deadAfterMs: number;
  rescueIntervalMs: number;
  /** Hard limit on one attempt, however alive its worker looks. */
  taskTimeoutMs: number;
  pollIntervalMs: number;
  shutdownGraceMs: number;
}

const SECOND = 1000;

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const dataDir = path.resolve(readString(env, 'EASEL_DATA_DIR', './data'));
  const config: Config = {
    host: readHost(env, 'HOST', '127.0.0.1'),
    port: readInt(env, 'PORT', 8080, { min: 0, max: 65535 }),
    publicUrl: readUrl(env, 'EASEL_PUBLIC_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    dataDir,
    databaseUrl: readUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    embeddedPostgresPort: env.EASEL_EMBEDDED_PG_PORT
      ? readInt(env, 'EASEL_EMBEDDED_PG_PORT', 0, { min: 1024, max: 65535 })
      : undefined,
    logLevel: readChoice(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    logFormat: readChoice(env, 'EASEL_LOG_FORMAT', 'auto', ['auto', 'json', 'pretty']),
    bodyLimitBytes: readInt(env, 'EASEL_BODY_LIMIT_BYTES', 1024 * 1024, { min: 1024, max: 64 * 1024 * 1024 }),
    defaultProvider: readString(env, 'EASEL_DEFAULT_PROVIDER', 'sketch'),
    queue: {
      maxAttempts: readInt(env, 'EASEL_MAX_ATTEMPTS', 4, { min: 1, max: 20 }),
      retryBaseMs: readInt(env, 'EASEL_RETRY_BASE_MS', 2 * SECOND, { min: 0, max: 3600 * SECOND }),
      retryMaxMs: readInt(env, 'EASEL_RETRY_MAX_MS', 60 * SECOND, { min: 0, max: 24 * 3600 * SECOND }),
      providerConcurrency: readLimits(env, 'EASEL_PROVIDER_CONCURRENCY', {}),
      defaultProviderConcurrency: readInt(env, 'EASEL_DEFAULT_PROVIDER_CONCURRENCY', 64, { min: 1, max: 10_000 }),
    },
    worker: {
      concurrency: readInt(env, 'EASEL_WORKER_CONCURRENCY', 16, { min: 1, max: 1000 }),
      heartbeatMs: readInt(env, 'EASEL_HEARTBEAT_MS', 5 * SECOND, { min: 100, max: 60 * SECOND }),
      deadAfterMs: readInt(env, 'EASEL_WORKER_DEAD_AFTER_MS', 30 * SECOND, { min: 500, max: 3600 * SECOND }),
      rescueIntervalMs: readInt(env, 'EASEL_RESCUE_INTERVAL_MS', 5 * SECOND, { min: 100, max: 600 * SECOND }),
      taskTimeoutMs: readInt(env, 'EASEL_TASK_TIMEOUT_MS', 300 * SECOND, { min: SECOND, max: 24 * 3600 * SECOND }),
      pollIntervalMs: readInt(env, 'EASEL_POLL_INTERVAL_MS', SECOND, { min: 10, max: 60 * SECOND }),
      shutdownGraceMs: readInt(env, 'EASEL_SHUTDOWN_GRACE_MS', 30 * SECOND, { min: 0, max: 3600 * SECOND }),
    },
    sseHeartbeatMs: readInt(env, 'EASEL_SSE_HEARTBEAT_MS', 15 * SECOND, { min: 100, max: 300 * SECOND }),
    waitMaxSeconds: readInt(env, 'EASEL_WAIT_MAX_SECONDS', 60, { min: 0, max: 600 }),
  };
  if (config.worker.heartbeatMs * 2 > config.worker.deadAfterMs) {
    throw new Error(
      `EASEL_WORKER_DEAD_AFTER_MS (${config.worker.deadAfterMs}) must be at least twice EASEL_HEARTBEAT_MS (${config.worker.heartbeatMs}), or live workers would be declared dead`,
    );
  }
  return Object.freeze(config);
}

export function providerConcurrency(queue: QueueConfig, provider: string): number {
  return queue.providerConcurrency[provider] ?? queue.defaultProviderConcurrency;
}
