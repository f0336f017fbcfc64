import type { FastifyInstance } from 'fastify';
import { sendProblem } from './problem.js';

interface KnownPath {
  pattern: RegExp;
  methods: Set<string>;
}

/** `/v1/tasks/:id/images/:index` → a RegExp matching concrete paths of that route. */
function routePattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) =>
      segment.startsWith(':') ? '[^/]+' : segment === '*' ? '.*' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('/');
  return new RegExp(`^${source}$`);
}

/**
 * Fastify answers an unknown method on a known path as it answers an unknown path: 404. Clients
 * deserve 405 and an `Allow` header (RFC 9110 §15.5.6), so every route is noted as it is
 * added, and a request that matched no route but whose path some route serves is refused with
 * the methods that path has. Must be registered before any route.
 */
export function registerMethodNotAllowed(app: FastifyInstance): void {
  const paths = new Map<string, KnownPath>();
  app.addHook('onRoute', (route) => {
    // A catch-all (CORS answers OPTIONS on `*`) is no path of its own: it would make every
    // unknown path a 405.
    if (route.url === '*' || route.url === '/*') return;
    const known = paths.get(route.url) ?? { pattern: routePattern(route.url), methods: new Set<string>() };
    for (const method of [route.method].flat()) known.methods.add(method.toUpperCase());
    paths.set(route.url, known);
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    const path = request.url.split('?')[0]!;
    const allowed = new Set<string>();
    for (const known of paths.values()) if (known.pattern.test(path)) known.methods.forEach((m) => allowed.add(m));
    if (allowed.size === 0) return;
    const allow = [...allowed].sort().join(', ');
    return sendProblem(reply.header('allow', allow), 'METHOD_NOT_ALLOWED', `${path} answers ${allow}`);
  });
}
