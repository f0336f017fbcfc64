import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import { providerConcurrency, type QueueConfig } from '../../config/config.js';
import type { Pool } from '../../db/pool.js';
import { pendingMigrations } from '../../db/migrate.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { Storage } from '../../storage/storage.js';
import { queueStats } from '../../tasks/position.js';
import { liveWorkers } from '../../tasks/workers.js';
import { sendProblem } from '../problem.js';

export interface SystemRoutesOptions {
  pool: Pool;
  registry: ProviderRegistry;
  storage: Storage;
  queue: QueueConfig;
  deadAfterMs: number;
}

/**
 * The readiness checks in order; returns what is wrong in words safe to show anyone (the probe
 * answers whatever the Host), or undefined when ready. Details (errors, paths) go to the log.
 */
async function firstFailedCheck(
  { pool, storage }: Pick<SystemRoutesOptions, 'pool' | 'storage'>,
  log: FastifyBaseLogger,
): Promise<string | undefined> {
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    log.warn({ err: error }, 'readiness: the database is not reachable');
    return 'the database is not reachable';
  }
  try {
    const pending = await pendingMigrations(pool);
    if (pending.length > 0) return `migrations pending: ${pending.join(', ')}`;
  } catch (error) {
    log.warn({ err: error }, 'readiness: could not list applied migrations');
    return 'the database is not reachable';
  }
  try {
    await storage.check();
  } catch (error) {
    log.warn({ err: error, storage: storage.driver }, 'readiness: storage is not writable');
    return 'storage is not writable';
  }
  return undefined;
}

/** Health, readiness, providers and the queue overview. */
export const systemRoutes: FastifyPluginAsyncTypebox<SystemRoutesOptions> = async (app, options) => {
  const { pool, registry, queue } = options;

  app.get('/healthz', { schema: { summary: 'The process is up', tags: ['system'] } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { schema: { summary: 'The database is reachable, migrations applied and storage writable', tags: ['system'] } },
    async (request, reply) => {
      const failed = await firstFailedCheck(options, request.log);
      if (failed) return sendProblem(reply, 'NOT_READY', failed);
      return { status: 'ready' };
    },
  );

  app.get(
    '/v1/providers',
    {
      schema: {
        summary: 'Providers and their models',
        tags: ['providers'],
        response: {
          200: Type.Object({
            data: Type.Array(
              Type.Object({
                id: Type.String(),
                concurrency_limit: Type.Integer(),
                models: Type.Array(
                  Type.Object({
                    id: Type.String(),
                    kinds: Type.Array(Type.String()),
                    max_width: Type.Integer(),
                    max_height: Type.Integer(),
                    max_steps: Type.Integer(),
                    description: Type.Optional(Type.String()),
                  }),
                ),
              }),
            ),
          }),
        },
      },
    },
    async () => ({
      data: registry.list().map((provider) => ({
        id: provider.id,
        concurrency_limit: providerConcurrency(queue, provider.id),
        models: provider.models().map((model) => ({
          id: model.id,
          kinds: model.kinds,
          max_width: model.maxWidth,
          max_height: model.maxHeight,
          max_steps: model.maxSteps,
          description: model.description,
        })),
      })),
    }),
  );

  app.get(
    '/v1/queue',
    {
      schema: {
        summary: 'Queue depth, running tasks and recent run times per provider',
        tags: ['queue'],
        response: {
          200: Type.Object({
            providers: Type.Array(
              Type.Object({
                provider: Type.String(),
                queued: Type.Integer(),
                running: Type.Integer(),
                concurrency_limit: Type.Integer(),
                median_run_seconds: Type.Union([Type.Number(), Type.Null()]),
              }),
            ),
            workers: Type.Object({ live: Type.Integer(), slots: Type.Integer() }),
          }),
        },
      },
    },
    async () => {
      const [stats, workers] = await Promise.all([queueStats(pool), liveWorkers(pool, options.deadAfterMs)]);
      const known = new Map(stats.map((row) => [row.provider, row]));
      const providers = [...new Set([...registry.ids(), ...known.keys()])].sort().map((provider) => ({
        provider,
        queued: known.get(provider)?.queued ?? 0,
        running: known.get(provider)?.running ?? 0,
        concurrency_limit: providerConcurrency(queue, provider),
        median_run_seconds: known.get(provider)?.medianRunSeconds ?? null,
      }));
      return { providers, workers };
    },
  );
};
