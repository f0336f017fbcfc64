import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

/** Request headers a browser client may send beyond the CORS-safelisted ones. */
const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key', 'Prefer', 'Last-Event-ID'];
/** Response headers a browser client may read beyond the CORS-safelisted ones. */
const EXPOSED_HEADERS = [
  'Location',
  'Preference-Applied',
  'Idempotent-Replayed',
  'ETag',
  'Retry-After',
  'Allow',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
];

/**
 * Cross-origin access for browser clients served from elsewhere (a console on another port, an
 * app). Off unless EASEL_CORS_ORIGINS lists origins: any origin allowed here can read every
 * user's prompts and images from a browser, so there is no wildcard.
 */
export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  await app.register(cors, {
    origin: [...origins],
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
  // Streaming routes hijack the reply and write their head on the raw response, which drops
  // headers set through Fastify; copying the CORS ones onto the raw response keeps them.
  app.addHook('onRequest', async (_request, reply) => {
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (name.startsWith('access-control-') && value !== undefined) reply.raw.setHeader(name, value);
    }
  });
}
