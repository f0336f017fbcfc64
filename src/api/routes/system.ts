import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import { providerConcurrency, type QueueConfig } from '../../config/config.js';
import { priceOf, type Prices } from '../../config/prices.js';
import { availabilityOf, CredentialAvailability } from '../../credentials/availability.js';
import type { Pool } from '../../db/pool.js';
import { pendingMigrations } from '../../db/migrate.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { Storage } from '../../storage/storage.js';
import { queueStats } from '../../tasks/position.js';
import { liveWorkers } from '../../tasks/workers.js';
import { sendProblem } from '../problem.js';
import { ProvidersSchema } from '../schemas/providers.js';

export interface SystemRoutesOptions {
  pool: Pool;
  registry: ProviderRegistry;
  storage: Storage;
  queue: QueueConfig;
  deadAfterMs: number;
  availability: CredentialAvailability;
  prices: Prices;
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
        summary: 'Providers, their models, prices and whether they can take work now',
        description:
          'A provider with a credential pool is `available` while one of its credentials is usable now; otherwise `unavailable_reason` says why and `available_again_at` when a credential comes back by itself (null when only an admin can help). Its queued tasks wait meanwhile; they are never failed for it.',
        tags: ['providers'],
        response: { 200: ProvidersSchema },
      },
    },
    async () => {
      const pools = await options.availability.pools();
      return {
        data: registry.list().map((provider) => {
          const pool = provider.credentialPool;
          const counts = pool ? CredentialAvailability.countsOf(pools, pool) : undefined;
          const health = counts
            ? availabilityOf(counts, options.availability.hasSecretKey)
            : { available: true, reason: null, availableAgainAt: null };
          return {
            id: provider.id,
            concurrency_limit: providerConcurrency(queue, provider.id),
            available: health.available,
            unavailable_reason: health.reason,
            available_again_at: health.availableAgainAt?.toISOString() ?? null,
            credentials:
              pool && counts
                ? {
                    pool,
                    total: counts.total,
                    active: counts.active,
                    cooling_down: counts.cooling_down,
                    exhausted: counts.exhausted,
                    disabled: counts.disabled,
                  }
                : null,
            models: provider.models().map((model) => ({
              id: model.id,
              kinds: model.kinds,
              max_width: model.maxWidth,
              max_height: model.maxHeight,
              max_steps: model.maxSteps,
              sizes: model.sizes?.map(({ width, height }) => ({ width, height })) ?? null,
              max_n: model.maxN ?? null,
              description: model.description,
              options: model.options ?? null,
              price: priceOf(options.prices, provider.id, model.id),
            })),
          };
        }),
      };
    },
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
