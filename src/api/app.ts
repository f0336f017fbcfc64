import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { CredentialAvailability } from '../credentials/availability.js';
import type { CredentialService } from '../credentials/service.js';
import type { Pool } from '../db/pool.js';
import { balancesOf } from '../billing/accounts.js';
import { registerAuth } from './auth.js';
import { registerRateLimit } from './rate-limit.js';
import type { EventHub } from '../events/hub.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Storage } from '../storage/storage.js';
import type { TaskService } from '../tasks/service.js';
import { registerCors } from './cors.js';
import { createLinkBuilder, type UrlSigner } from './image-delivery.js';
import { docsPageOptions, homeRoute } from './home-page.js';
import { registerHostCheck } from './host-check.js';
import { registerMethodNotAllowed } from './method-not-allowed.js';
import { openApiOptions } from './openapi.js';
import { modelRouteRoutes } from './routes/model-routes.js';
import { registerProblemHandlers } from './problem.js';
import { adminCredentialRoutes } from './routes/admin-credentials.js';
import { AdminService } from '../admin/service.js';
import { NO_HINTS, type Hints } from '../db/notifier.js';
import { adminQueueRoutes } from './routes/admin-queue.js';
import { adminTaskRoutes } from './routes/admin-tasks.js';
import { adminBillingRoutes } from './routes/admin-billing.js';
import type { LicenseApi } from '../billing/license-api.js';
import { eventRoutes } from './routes/events.js';
import { imageRoutes } from './routes/images.js';
import { systemRoutes } from './routes/system.js';
import { tokenStatusRoutes } from './routes/token-status.js';
import { taskRoutes } from './routes/tasks.js';
import { uploadRoutes } from './routes/uploads.js';
import { creditRoutes } from './routes/credits.js';
import { userRoutes } from './routes/users.js';
import { UserService } from '../users/service.js';
import type { Listener } from '../db/listener.js';
import { adminWorkerTokenRoutes } from './routes/admin-worker-tokens.js';
import { workerRoutes } from './routes/worker.js';

export interface AppDeps {
  config: Pick<
    Config,
    | 'bodyLimitBytes'
    | 'publicUrl'
    | 'queue'
    | 'worker'
    | 'output'
    | 'sseHeartbeatMs'
    | 'waitMaxSeconds'
    | 'sseMaxPerUser'
    | 'sseMaxConnections'
    | 'host'
    | 'allowedHosts'
    | 'corsOrigins'
    | 'inputs'
    | 'prices'
    | 'adminSecret'
    | 'authMode'
    | 'limits'
  >;
  pool: Pool;
  registry: ProviderRegistry;
  storage: Storage;
  hub: EventHub;
  tasks: TaskService;
  credentials: CredentialService;
  /** Credential pools' states: provider health and why queued tasks wait. */
  availability: CredentialAvailability;
  log: Logger;
  /** Wakes workers and event streams after admin changes; without it they notice on their next poll. */
  hints?: Hints;
  /** LICENSE_API_ENDPOINT: the licence API, for `POST /v1/admin/billing/reconcile`. */
  licenseApi?: { api: LicenseApi; timeoutMs: number } | undefined;
  /** Signs image URLs that work without an API key; without it `signed_url` is null. */
  urlSigner?: UrlSigner | undefined;
  /** EASEL_PRESIGN_SECONDS: lifetime of the presigned URLs image routes redirect to (1 h by default). */
  presignSeconds?: number;
  /** Wakes remote workers' claim long polls; without it they poll (worker.pollIntervalMs). */
  listener?: Listener;
}

/** The HTTP API as a value: tests inject into it or listen on a port; `server` only listens. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    // One debug line per request from our own hook instead of Fastify's two info lines.
    logController: new LogController({ disableRequestLogging: true }),
    // SSE streams never go idle; on close they must be cut, or shutdown would wait on them.
    forceCloseConnections: true,
    ajv: {
      // Unknown fields are an error, not silently dropped; numbers must be numbers.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: true },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerProblemHandlers(app);
  // Bodies are JSON only. Fastify parses text/plain into a string by default, which then failed
  // validation with a puzzling 400; without the parser such a body is 415 UNSUPPORTED_MEDIA_TYPE.
  app.removeContentTypeParser('text/plain');
  // Hooks before routes: they apply to every route registered after them. The Host check
  // comes first so that a foreign page learns nothing, not even which methods a path has.
  registerHostCheck(app, config);
  registerMethodNotAllowed(app);
  await registerCors(app, config.corsOrigins);
  registerAuth(app, { pool: deps.pool, mode: config.authMode, signer: deps.urlSigner });
  registerRateLimit(app, { pool: deps.pool, perMinute: config.limits.keyRatePerMinute });
  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      // The path without the query: a query can carry a secret (`/api/token-status?secret=`).
      {
        method: request.method,
        url: request.url.split('?')[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  await app.register(swagger, openApiOptions(config.publicUrl));
  await app.register(swaggerUi, docsPageOptions());

  const links = createLinkBuilder(config.publicUrl, deps.urlSigner);
  await app.register(taskRoutes, {
    tasks: deps.tasks,
    links,
    waitMaxSeconds: config.waitMaxSeconds,
    uploadMaxBytes: config.inputs.uploadMaxBytes,
    formFieldMaxBytes: config.bodyLimitBytes,
  });
  await app.register(eventRoutes, {
    pool: deps.pool,
    hub: deps.hub,
    links,
    heartbeatMs: config.sseHeartbeatMs,
    limits: { perUser: config.sseMaxPerUser, total: config.sseMaxConnections },
  });
  await app.register(imageRoutes, {
    pool: deps.pool,
    storage: deps.storage,
    presignSeconds: deps.presignSeconds ?? 3600,
  });
  await app.register(uploadRoutes, {
    pool: deps.pool,
    storage: deps.storage,
    maxPixels: config.inputs.maxPixels,
    maxBytes: config.inputs.uploadMaxBytes,
  });
  await app.register(systemRoutes, {
    pool: deps.pool,
    registry: deps.registry,
    storage: deps.storage,
    queue: config.queue,
    deadAfterMs: config.worker.deadAfterMs,
    availability: deps.availability,
    prices: config.prices,
  });
  await app.register(adminCredentialRoutes, { credentials: deps.credentials });
  const admin = new AdminService(deps.pool, deps.storage, deps.hints ?? NO_HINTS, (ids) => balancesOf(deps.pool, ids));
  await app.register(adminTaskRoutes, { admin, links });
  await app.register(adminQueueRoutes, { admin });
  await app.register(modelRouteRoutes, { router: deps.tasks.router });
  await app.register(creditRoutes, { pool: deps.pool });
  await app.register(userRoutes, { users: new UserService(deps.pool) });
  await app.register(adminBillingRoutes, { pool: deps.pool, licenseApi: deps.licenseApi });
  await app.register(adminWorkerTokenRoutes, { pool: deps.pool });
  await app.register(workerRoutes, {
    pool: deps.pool,
    hints: deps.hints ?? NO_HINTS,
    listener: deps.listener,
    storage: deps.storage,
    queue: config.queue,
    worker: config.worker,
    output: config.output,
    externalBilling: deps.licenseApi !== undefined,
  });
  if (config.adminSecret) {
    await app.register(tokenStatusRoutes, { credentials: deps.credentials, adminSecret: config.adminSecret });
  }
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/', { schema: { hide: true } }, homeRoute);
  return app;
}
