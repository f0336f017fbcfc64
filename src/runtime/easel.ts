import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from '../api/app.js';
import type { Config } from '../config/config.js';
import { importEnvCredentials } from '../credentials/import-env.js';
import { ensureAdminKey } from '../auth/bootstrap.js';
import { isLoopbackHost } from '../config/config.js';
import { openSecretBox } from '../credentials/secret-key-file.js';
import { CredentialAvailability } from '../credentials/availability.js';
import { CredentialService } from '../credentials/service.js';
import { createCredentialTokenStore } from '../credentials/token-store.js';
import { Channels, Listener } from '../db/listener.js';
import { migrate } from '../db/migrate.js';
import { Notifier } from '../db/notifier.js';
import { createUserUrlFetcher } from '../net/user-url.js';
import { EventHub } from '../events/hub.js';
import { createProviderRegistry } from '../providers/index.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { UrlSigner } from '../api/image-delivery.js';
import type { SecretBox } from '../credentials/secret-box.js';
import { createStorage } from '../storage/create.js';
import type { Storage } from '../storage/storage.js';
import { TaskService } from '../tasks/service.js';
import { Worker } from '../worker/worker.js';
import { createLicenseApi } from '../billing/license-api.js';
import { ExternalBalanceCheck } from '../billing/external-balance.js';
import { openDatabase, type Database } from './database.js';

export interface Roles {
  api: boolean;
  worker: boolean;
}

export interface RunningEasel {
  db: Database;
  listener: Listener;
  app?: FastifyInstance;
  worker?: Worker;
  hub?: EventHub;
  /** `http://host:port` when the API listens. */
  url?: string;
  /** Stop claiming, let running tasks finish within the grace period, close everything. */
  stop(): Promise<void>;
}

export interface StartOptions {
  roles: Roles;
  /** Tests pass their own registry (fakes) or storage; production uses the defaults. */
  registry?: ProviderRegistry;
  storage?: Storage;
}

/**
 * Wire the parts together for the roles asked: `start` runs both, `api` and `worker` one each
 * against a shared database. Each part that is started registers how it is released.
 */
export async function startEasel(config: Readonly<Config>, log: Logger, options: StartOptions): Promise<RunningEasel> {
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((error: unknown) => log.warn({ err: error }, 'shutdown step failed'));
  };
  try {
    const db = await openDatabase(config, log, { poolSize: options.roles.worker ? 20 : 10 });
    cleanups.push(() => db.close());
    await migrate(db.pool, log);
    if (config.adminKey) await ensureAdminKey(db.pool, config.adminKey, log);
    if (config.authMode === 'local' && !isLoopbackHost(config.host) && options.roles.api) {
      log.warn(
        { host: config.host },
        'EASEL_AUTH=local on a network address (forced): every request without a key acts as the ADMIN. Only behind a proxy or firewall you control.',
      );
    }
    const secretBox = await openSecretBox(config, log);
    await importEnvCredentials(db.pool, secretBox, config.credentialImports, log.child({ component: 'credentials' }));

    const registry =
      options.registry ??
      createProviderRegistry(config.providers, { tokens: createCredentialTokenStore(db.pool, secretBox) });
    const storage = options.storage ?? (await createStorage(config.storage, config.dataDir));
    // Now, not at the first image: a bucket that cannot be reached stops start-up with a
    // message naming it (src/cli/explain-error.ts), instead of failing every attempt later.
    // The local folder is made on first write, and /readyz reports when it cannot be.
    if (storage.driver === 's3') await storage.check();
    log.info({ storage: describeStorage(config, storage) }, 'image storage ready');
    const listener = new Listener(db.connectionString, Object.values(Channels), log.child({ component: 'listener' }));
    await listener.start();
    cleanups.push(() => listener.close());
    const notifier = new Notifier(db.connectionString, log.child({ component: 'notifier' }));
    cleanups.push(() => notifier.close());

    const licenseApi = config.licenseApi && createLicenseApi(config.licenseApi);
    const running: RunningEasel = { db, listener, stop: stopAll };
    if (options.roles.worker) {
      const worker = new Worker({
        pool: db.pool,
        hints: notifier,
        listener,
        registry,
        storage,
        config: config.worker,
        queue: config.queue,
        output: config.output,
        log,
        secrets: secretBox,
        licenseApi: licenseApi && { api: licenseApi, timeoutMs: config.licenseApi!.timeoutMs },
        retention: config.retention,
      });
      await worker.start();
      cleanups.push(() => worker.stop());
      running.worker = worker;
    }
    if (options.roles.api) {
      const hub = new EventHub(db.pool, listener, log.child({ component: 'events' }));
      hub.start();
      cleanups.push(async () => hub.close());
      const availability = new CredentialAvailability(db.pool, secretBox !== undefined);
      const tasks = new TaskService(
        db.pool,
        registry,
        config,
        notifier,
        hub,
        {
          pool: db.pool,
          storage,
          maxPixels: config.inputs.maxPixels,
          fetchUserUrl: createUserUrlFetcher({
            allowPrivate: config.userUrls.allowPrivate,
            maxBytes: config.inputs.uploadMaxBytes,
            timeoutMs: config.userUrls.fetchTimeoutMs,
          }),
        },
        availability,
        licenseApi &&
          new ExternalBalanceCheck({
            pool: db.pool,
            api: licenseApi,
            failOpen: config.licenseApi!.failOpen,
            log: log.child({ component: 'license-api' }),
          }),
      );
      const credentials = new CredentialService(db.pool, secretBox, {
        hints: notifier,
        registry,
        deadAfterMs: config.worker.deadAfterMs,
      });
      const app = await buildApp({
        config,
        pool: db.pool,
        registry,
        storage,
        hub,
        tasks,
        credentials,
        availability,
        log,
        hints: notifier,
        licenseApi: licenseApi && { api: licenseApi, timeoutMs: config.licenseApi!.timeoutMs },
        urlSigner: urlSignerFor(config, secretBox, log),
        presignSeconds: config.imageUrls.presignSeconds,
        listener,
      });
      const address = await app.listen({ host: config.host, port: config.port });
      cleanups.push(() => app.close());
      running.app = app;
      running.hub = hub;
      running.url = address;
      log.info({ url: address, docs: `${address}/docs` }, 'Easel API listening');
    }
    return running;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** For the start-up log: which store, never its keys. */
function describeStorage(config: Readonly<Config>, storage: Storage): string {
  if (config.storage.driver === 's3' && storage.driver === 's3') {
    return `s3 bucket ${config.storage.bucket} at ${config.storage.endpoint ?? `AWS S3 ${config.storage.region}`}`;
  }
  return storage.driver === 'local' ? `local folder ${path.join(config.dataDir, 'images')}` : storage.driver;
}

/**
 * EASEL_URL_SIGNING_KEY, else a key derived from the secret key (EASEL_SECRET_KEY or the
 * embedded mode's key file), so every API process sharing that key accepts the others' signed
 * URLs. With neither, answers carry `signed_url: null`, and this says why once.
 */
function urlSignerFor(config: Readonly<Config>, secretBox: SecretBox | undefined, log: Logger): UrlSigner | undefined {
  const key = config.imageUrls.signingKey ?? secretBox?.deriveKey('easel image url signing v1');
  if (key) return new UrlSigner(key, config.imageUrls.signedUrlSeconds);
  log.warn(
    'no key to sign image URLs (neither EASEL_URL_SIGNING_KEY nor EASEL_SECRET_KEY is set, and the database is external): signed_url is null in task answers; set EASEL_URL_SIGNING_KEY on every API process',
  );
  return undefined;
}
