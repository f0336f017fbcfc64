import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { sendProblem } from './problem.js';

/**
 * The DNS-rebinding guard. A web page on evil.example can point its own name at 127.0.0.1 and
 * then call the local API from the user's browser: same origin as far as the browser knows, so
 * CORS does not stop it. What the browser cannot forge is the `Host` header, which still says
 * evil.example. So the API answers only to host names it knows to be its own.
 */
export type HostCheckConfig = Pick<Config, 'host' | 'publicUrl' | 'allowedHosts'>;

/**
 * Probes answer whatever the Host: orchestrators probe by pod or node IP, and these two routes
 * say only whether the process is up and ready, never anything of a user's.
 */
export const HOST_CHECK_EXEMPT_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);
/** Addresses that mean "every interface": binding to one says nothing about the name clients use. */
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '']);

/** `Host` → lower-case name without port, brackets or trailing dot; undefined when malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/i.exec(header.trim());
  const name = match?.[1] ?? match?.[2];
  return name?.toLowerCase().replace(/\.$/, '');
}

/** Returns whether a request's `Host` header names this server; `*` in the list allows all. */
export function createHostAllowlist(config: HostCheckConfig): (hostHeader: string | undefined) => boolean {
  if (config.allowedHosts.includes('*')) return () => true;
  const allowed = new Set(config.allowedHosts.map((host) => host.replace(/\.$/, '')));
  if (config.publicUrl) allowed.add(hostName(new URL(config.publicUrl).host)!);
  const bound = config.host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (!WILDCARD_ADDRESSES.has(bound)) allowed.add(bound);
  return (hostHeader) => {
    const name = hostName(hostHeader);
    if (name === undefined) return false;
    return LOOPBACK.has(name) || name.endsWith('.localhost') || allowed.has(name);
  };
}

/** Refuses, before anything else runs, requests whose `Host` is not one of ours. */
export function registerHostCheck(app: FastifyInstance, config: HostCheckConfig): void {
  const isAllowed = createHostAllowlist(config);
  app.addHook('onRequest', async (request, reply) => {
    if (isAllowed(request.headers.host)) return;
    // The matched route's pattern, not the raw URL: no spelling of another path can pass as a probe.
    if (request.routeOptions.url && HOST_CHECK_EXEMPT_ROUTES.has(request.routeOptions.url)) return;
    const shown = JSON.stringify((request.headers.host ?? '').slice(0, 100));
    return sendProblem(
      reply,
      'HOST_NOT_ALLOWED',
      `this server does not answer to the host name ${shown}; if that name is yours, add it to EASEL_ALLOWED_HOSTS (or set EASEL_PUBLIC_URL)`,
    );
  });
}
