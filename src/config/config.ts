import path from 'node:path';
import { credentialsFromEnv, type EnvCredential } from '../credentials/env-credentials.js';
import { parseSecretKey } from '../credentials/secret-box.js';
import { readProvidersConfig, type ProvidersConfig } from '../providers/config.js';
import { readRoutesFile, type ModelRoute } from '../routing/routes-file.js';
import { looksLikeKey } from '../auth/api-keys.js';
import { checkAddress } from '../net/address-policy.js';
import { readPrices, type Prices } from './prices.js';
import { readMinBalanceMicro } from './billing.js';
import { readOutputConfig, type OutputConfig } from './output.js';
import { readLicenseApi, type LicenseApiConfig } from './license-api.js';
import { readRetention, type RetentionConfig } from './retention.js';
import { readImageUrlConfig, readStorageConfig, type ImageUrlConfig, type StorageConfig } from './storage.js';
import { ConfigError, readChoice, readHost, readInt, readLimits, readString, readUrl, type Env } from './env.js';
import { readPreviewConfig, type PreviewLimits } from './previews.js';

export type LogFormat = 'auto' | 'json' | 'pretty';
/** `local`: keyless requests act as the local admin; `required`: every request needs an API key. */
export type AuthMode = 'local' | 'required';

/** Everything Easel reads from its environment, parsed once at start. `.env.example` documents each. */
export interface Config {
  host: string;
  port: number;
  /** EASEL_AUTH; the default follows `host` (local on a loopback address, required elsewhere). */
  authMode: AuthMode;
  /** EASEL_ADMIN_KEY: an admin API key made (once) at start, to bootstrap the first admin. */
  adminKey: string | undefined;
  /** Base for absolute URLs in answers (image links); unset = the request's own scheme and Host. */
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
  /** Server-side statement_timeout (and, with a margin, the client-side query timeout) of the pool. */
  dbStatementTimeoutMs: number;
  /** Open SSE streams one user may hold on one API process. */
  sseMaxPerUser: number;
  /** Open SSE streams on one API process, all users together. */
  sseMaxConnections: number;
  /**
   * Host names the API answers to beyond loopback, EASEL_PUBLIC_URL's host and a specific HOST
   * (DNS-rebinding guard). Lower case, no brackets, no port; `['*']` turns the check off.
   */
  allowedHosts: readonly string[];
  /** Browser origins allowed to call the API (CORS); empty = CORS off. */
  corsOrigins: readonly string[];
  userUrls: UserUrlConfig;
  inputs: InputsConfig;
  /** Format, quality and metadata of stored images (src/config/output.ts). */
  output: OutputConfig;
  /**
   * EASEL_SECRET_KEY (32 bytes) sealing provider secrets; unset = a generated key file under
   * `dataDir` when the database is embedded, none (storing secrets refused) when external.
   */
  secretKey: Buffer | undefined;
  /** Provider secrets in the environment, imported into the credential pool at start. */
  credentialImports: readonly EnvCredential[];
  /** EASEL_PRICES: credits per image, second or task, by provider or provider/model. */
  prices: Prices;
  /**
   * ADMIN_SECRET: when set, `GET /api/token-status?secret=` (the token view of existing
   * Hugging Face deployments) answers; unset, that route does not exist.
   */
  adminSecret: string | undefined;
  /** EASEL_MIN_BALANCE in micro-credits: available credits needed to start a priced task. */
  minBalanceMicro: number;
  /** Hosted adapters' settings: base URLs, default models (src/providers/config.ts). */
  providers: ProvidersConfig;
  /** Named model routes from EASEL_ROUTES_FILE (docs/routing.md); empty without the file. */
  routes: readonly ModelRoute[];
  /** Per-user and per-key limits (docs/api.md, "Limits"). */
  limits: LimitsConfig;
  /** LICENSE_API_*: the external licence API checked before and charged after; undefined = off. */
  licenseApi: LicenseApiConfig | undefined;
  /** EASEL_IMAGE_RETENTION_DAYS, EASEL_TASK_RETENTION_DAYS, gc cadence and orphan grace (docs/retention.md). */
  retention: RetentionConfig;
  /** EASEL_STORAGE and S3_* / MINIO_*: where image bytes live (docs/storage.md). */
  storage: StorageConfig;
  /** Presigned and HMAC-signed image URL lifetimes and the signing key (docs/storage.md). */
  imageUrls: ImageUrlConfig;
}

export interface LimitsConfig {
  /** EASEL_USER_MAX_ACTIVE_TASKS: tasks one user may have queued and running at once; more is 429. */
  userMaxActiveTasks: number;
  /** EASEL_KEY_RATE_PER_MINUTE: requests one API key may make per clock minute, across API processes. */
  keyRatePerMinute: number;
}

/** Fetching URLs that users supply (input images, later webhooks): the SSRF guard in src/net/user-url.ts. */
export interface UserUrlConfig {
  /** EASEL_ALLOW_PRIVATE_URLS: private, loopback and other non-public addresses may be fetched. */
  allowPrivate: boolean;
  /** Whole fetch of one input image, redirects included. */
  fetchTimeoutMs: number;
}

/** Limits on input images (img2img): uploads, data URLs and fetched URLs. */
export interface InputsConfig {
  /** Largest file `POST /v1/uploads` accepts; larger is 413. */
  uploadMaxBytes: number;
  /** Largest decoded size (width × height) of an input; checked from the header before decoding. */
  maxPixels: number;
}

export interface QueueConfig {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Global cap on running tasks per provider, across every worker. */
  providerConcurrency: Record<string, number>;
  defaultProviderConcurrency: number;
  /** Submits are refused (503 QUEUE_FULL) while about this many tasks are queued, across providers. */
  maxQueuedTasks: number;
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
  /** Always below deadAfterMs: the worker keeps heartbeating while it drains. */
  shutdownGraceMs: number;
  /** A worker that cannot reach the database this long exits non-zero for its supervisor. */
  databaseGiveUpMs: number;
  /** Task events older than this are pruned by the workers' maintenance; 0 keeps them forever. */
  eventRetentionHours: number;
  /** How long a rate-limited credential rests when the provider gave no Retry-After. */
  credentialCooldownMs: number;
  previews: PreviewLimits;
}

const SECOND = 1000;

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const dataDir = path.resolve(readString(env, 'EASEL_DATA_DIR', './data'));
  const host = readHost(env, 'HOST', '127.0.0.1');
  const config: Config = {
    host,
    authMode: readAuthMode(env, host),
    adminKey: readAdminKey(env, 'EASEL_ADMIN_KEY'),
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
      maxQueuedTasks: readInt(env, 'EASEL_MAX_QUEUED_TASKS', 100_000, { min: 1, max: 100_000_000 }),
    },
    worker: {
      concurrency: readInt(env, 'EASEL_WORKER_CONCURRENCY', 16, { min: 1, max: 1000 }),
      heartbeatMs: readInt(env, 'EASEL_HEARTBEAT_MS', 5 * SECOND, { min: 100, max: 60 * SECOND }),
      deadAfterMs: readInt(env, 'EASEL_WORKER_DEAD_AFTER_MS', 30 * SECOND, { min: 500, max: 3600 * SECOND }),
      rescueIntervalMs: readInt(env, 'EASEL_RESCUE_INTERVAL_MS', 5 * SECOND, { min: 100, max: 600 * SECOND }),
      taskTimeoutMs: readInt(env, 'EASEL_TASK_TIMEOUT_MS', 300 * SECOND, { min: SECOND, max: 24 * 3600 * SECOND }),
      pollIntervalMs: readInt(env, 'EASEL_POLL_INTERVAL_MS', SECOND, { min: 10, max: 60 * SECOND }),
      shutdownGraceMs: readInt(env, 'EASEL_SHUTDOWN_GRACE_MS', 20 * SECOND, { min: 0, max: 3600 * SECOND }),
      databaseGiveUpMs: readInt(env, 'EASEL_DATABASE_GIVE_UP_MS', 300 * SECOND, {
        min: SECOND,
        max: 7 * 24 * 3600 * SECOND,
      }),
      eventRetentionHours: readInt(env, 'EASEL_EVENT_RETENTION_HOURS', 168, { min: 0, max: 10 * 365 * 24 }),
      credentialCooldownMs: readInt(env, 'EASEL_CREDENTIAL_COOLDOWN_MS', 60 * SECOND, {
        min: 0,
        max: 24 * 3600 * SECOND,
      }),
      previews: readPreviewConfig(env),
    },
    sseHeartbeatMs: readInt(env, 'EASEL_SSE_HEARTBEAT_MS', 15 * SECOND, { min: 100, max: 300 * SECOND }),
    waitMaxSeconds: readInt(env, 'EASEL_WAIT_MAX_SECONDS', 60, { min: 0, max: 600 }),
    dbStatementTimeoutMs: readInt(env, 'EASEL_DB_STATEMENT_TIMEOUT_MS', 30 * SECOND, { min: 100, max: 3600 * SECOND }),
    sseMaxPerUser: readInt(env, 'EASEL_SSE_MAX_PER_USER', 20, { min: 1, max: 100_000 }),
    sseMaxConnections: readInt(env, 'EASEL_SSE_MAX_CONNECTIONS', 1000, { min: 1, max: 1_000_000 }),
    allowedHosts: readHostList(env, 'EASEL_ALLOWED_HOSTS'),
    corsOrigins: readOriginList(env, 'EASEL_CORS_ORIGINS'),
    userUrls: {
      allowPrivate: readChoice(env, 'EASEL_ALLOW_PRIVATE_URLS', 'false', ['true', 'false']) === 'true',
      fetchTimeoutMs: readInt(env, 'EASEL_INPUT_FETCH_TIMEOUT_MS', 15 * SECOND, { min: 100, max: 600 * SECOND }),
    },
    inputs: {
      uploadMaxBytes: readInt(env, 'EASEL_UPLOAD_MAX_BYTES', 20 * 1024 * 1024, { min: 1024, max: 1024 * 1024 * 1024 }),
      maxPixels: readInt(env, 'EASEL_INPUT_MAX_PIXELS', 40_000_000, { min: 64 * 64, max: 1_000_000_000 }),
    },
    output: readOutputConfig(env),
    secretKey: readSecretKey(env, 'EASEL_SECRET_KEY'),
    credentialImports: Object.freeze(credentialsFromEnv(env)),
    providers: readProvidersConfig(env),
    routes: readRoutesFile(env.EASEL_ROUTES_FILE?.trim() || undefined),
    prices: readPrices(env),
    adminSecret: readAdminSecret(env, 'ADMIN_SECRET'),
    limits: {
      userMaxActiveTasks: readInt(env, 'EASEL_USER_MAX_ACTIVE_TASKS', 1000, { min: 1, max: 10_000_000 }),
      keyRatePerMinute: readInt(env, 'EASEL_KEY_RATE_PER_MINUTE', 600, { min: 1, max: 10_000_000 }),
    },
    minBalanceMicro: readMinBalanceMicro(env),
    licenseApi: readLicenseApi(env),
    retention: readRetention(env),
    storage: readStorageConfig(env),
    imageUrls: readImageUrlConfig(env),
  };
  if (config.worker.heartbeatMs * 2 > config.worker.deadAfterMs) {
    throw new ConfigError(
      `EASEL_WORKER_DEAD_AFTER_MS (${config.worker.deadAfterMs}) must be at least twice EASEL_HEARTBEAT_MS (${config.worker.heartbeatMs}), or live workers would be declared dead`,
    );
  }
  if (config.worker.shutdownGraceMs >= config.worker.deadAfterMs) {
    // Peers would presume a draining worker dead and run its tasks a second time.
    throw new ConfigError(
      `EASEL_SHUTDOWN_GRACE_MS (${config.worker.shutdownGraceMs}) must be less than EASEL_WORKER_DEAD_AFTER_MS (${config.worker.deadAfterMs}), or other workers would rescue the tasks of a worker that is still finishing them`,
    );
  }
  return Object.freeze(config);
}

/** Loopback addresses and `localhost`: only this machine can reach a server bound there. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  // The SSRF guard's address table decides what is loopback (127.0.0.0/8, ::1, their mapped forms).
  const verdict = checkAddress(host);
  return !verdict.allowed && verdict.category === 'loopback';
}

/**
 * `local` on a network address would make every visitor the admin: refused unless forced with
 * EASEL_AUTH_FORCE_LOCAL=true (and then loudly warned about at start).
 */
function readAuthMode(env: Env, host: string): AuthMode {
  const loopback = isLoopbackHost(host);
  const mode = readChoice(env, 'EASEL_AUTH', loopback ? 'local' : 'required', ['local', 'required']);
  const forced = readChoice(env, 'EASEL_AUTH_FORCE_LOCAL', 'false', ['true', 'false']) === 'true';
  if (mode === 'local' && !loopback && !forced) {
    throw new ConfigError(
      `EASEL_AUTH=local on HOST=${host} would let anyone who can reach this address act as the admin, without a key. Use EASEL_AUTH=required (the default off loopback), bind HOST=127.0.0.1, or set EASEL_AUTH_FORCE_LOCAL=true if a proxy or firewall really guards the port`,
    );
  }
  return mode;
}

function readAdminKey(env: Env, name: string): string | undefined {
  const key = env[name]?.trim();
  if (!key) return undefined;
  if (!looksLikeKey(key)) {
    // Never echo the value.
    throw new ConfigError(
      `${name} must be an Easel API key: easel_sk_ followed by 43 characters of A-Z, a-z, 0-9, - or _ (make one with \`easel keys generate\`)`,
    );
  }
  return key;
}

export function providerConcurrency(queue: QueueConfig, provider: string): number {
  return queue.providerConcurrency[provider] ?? queue.defaultProviderConcurrency;
}

function readSecretKey(env: Env, name: string): Buffer | undefined {
  const text = env[name];
  if (text === undefined || text.trim() === '') return undefined;
  const key = parseSecretKey(text);
  if (!key) {
    // Never echo the value: it is a secret, even when malformed.
    throw new ConfigError(
      `${name} must be 32 bytes written as 64 hex digits or as base64 (e.g. the output of \`openssl rand -hex 32\`)`,
    );
  }
  return key;
}

function readList(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/** `easel.example.com, 192.168.1.20, [fd00::1]` → normalised names; `*` alone turns the check off. */
function readHostList(env: Env, name: string): string[] {
  const hosts = readList(env, name).map((entry) => entry.toLowerCase().replace(/^\[(.*)\]$/, '$1'));
  for (const host of hosts) {
    const isName = /^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?$/.test(host);
    const isIpv6 = /^[0-9a-f:.]+$/.test(host) && host.includes(':') && !/^[^:]+:\d+$/.test(host);
    if (host !== '*' && !isName && !isIpv6) {
      throw new ConfigError(
        `${name} has a bad entry ${JSON.stringify(host)}: expected host names or addresses without a port, e.g. easel.example.com,192.168.1.20 (or * to turn the check off)`,
      );
    }
  }
  return hosts;
}

/** `https://app.example.com, http://localhost:5173` → exact origins (scheme, host and port). */
function readOriginList(env: Env, name: string): string[] {
  return readList(env, name).map((entry) => {
    let origin: string | undefined;
    try {
      const url = new URL(entry);
      if (url.protocol === 'http:' || url.protocol === 'https:') origin = url.origin;
    } catch {
      // reported below
    }
    if (!origin || origin !== entry.replace(/\/$/, '').toLowerCase()) {
      throw new ConfigError(
        `${name} has a bad entry ${JSON.stringify(entry)}: expected origins like https://app.example.com or http://localhost:5173 (scheme, host and optional port, no path; * is not accepted)`,
      );
    }
    return origin;
  });
}

/** A guessable secret would open the token view to anyone: at least 16 characters. */
function readAdminSecret(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  if (!value) return undefined;
  if (value.length < 16) {
    throw new ConfigError(
      `${name} is too short (${value.length} characters): use at least 16, e.g. \`openssl rand -hex 16\``,
    );
  }
  return value;
}
