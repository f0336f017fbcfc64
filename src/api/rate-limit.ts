import type { FastifyInstance } from 'fastify';
import type { Queryable } from '../db/pool.js';
import { ApiError } from '../domain/errors.js';
import { isPublicRoute } from './auth.js';

/**
 * Count one request of `$1` (an API key) in the current clock minute of the database, and answer
 * the count and the seconds left in the window. One row per key, reset in place when a minute
 * starts. The window only moves forward: a request whose transaction began in the previous
 * minute but commits after the next one started counts in the newer window instead of resetting
 * it backwards. Committed without waiting for the disk (as TAKE_TAG in src/tasks/submit.ts):
 * the key's row lock is then held for microseconds, and a crash can at worst forget a few counts.
 */
const COUNT_REQUEST = `
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO api_key_request_windows AS w (key_id, window_start, requests)
SELECT $1, date_trunc('minute', now()), 1 FROM relaxed
ON CONFLICT (key_id) DO UPDATE SET
  requests = CASE WHEN EXCLUDED.window_start > w.window_start THEN 1 ELSE w.requests + 1 END,
  window_start = greatest(w.window_start, EXCLUDED.window_start)
RETURNING requests, greatest(1, ceil(extract(epoch FROM w.window_start + interval '1 minute' - now())))::int AS reset_seconds`;

/** One request counted against `keyId`'s current window: the count so far, and seconds until the window ends. */
export async function countKeyRequest(
  db: Queryable,
  keyId: string,
): Promise<{ requests: number; resetSeconds: number }> {
  const { rows } = await db.query<{ requests: number; reset_seconds: number }>({
    name: 'easel_count_key_request',
    text: COUNT_REQUEST,
    values: [keyId],
  });
  return { requests: rows[0]!.requests, resetSeconds: rows[0]!.reset_seconds };
}

/**
 * EASEL_KEY_RATE_PER_MINUTE: requests per API key per clock minute, counted in PostgreSQL so
 * that every API process shares one budget per key. Runs after the auth hook (it needs the
 * principal) and costs one statement per counted request. Not counted: public routes (health,
 * docs, the home page) and keyless requests, which exist only in local mode and act as this
 * machine's own admin. Every counted answer carries `RateLimit-Limit`, `RateLimit-Remaining`
 * and `RateLimit-Reset` (seconds); past the limit it is 429 RATE_LIMITED with Retry-After.
 */
export function registerRateLimit(app: FastifyInstance, options: { pool: Queryable; perMinute: number }): void {
  const { pool, perMinute } = options;
  app.addHook('onRequest', async (request, reply) => {
    const keyId = request.principal?.keyId;
    if (!keyId || isPublicRoute(request.routeOptions.url)) return;
    const { requests, resetSeconds } = await countKeyRequest(pool, keyId);
    reply.header('ratelimit-limit', String(perMinute));
    reply.header('ratelimit-remaining', String(Math.max(0, perMinute - requests)));
    reply.header('ratelimit-reset', String(resetSeconds));
    if (requests > perMinute) {
      throw new ApiError(
        'RATE_LIMITED',
        `this API key made more than ${perMinute} requests this minute; try again in ${resetSeconds} s`,
        { limit_per_minute: perMinute, retry_after_seconds: resetSeconds },
      );
    }
  });
}
