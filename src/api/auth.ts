import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticateKey, type Principal } from '../auth/api-keys.js';
import type { AuthMode } from '../config/config.js';
import type { Queryable } from '../db/pool.js';
import { ApiError } from '../domain/errors.js';
import { LOCAL_USER_ID } from '../domain/task.js';
import { checkSignedRequest, type UrlSigner } from './image-delivery.js';
import { authenticateWorkerToken, looksLikeWorkerToken, type WorkerPrincipal } from '../auth/worker-tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request acts as; set by the auth hook before any route runs. */
    principal: Principal;
    /** `principal.userId`, kept as its own field for the routes that only need the owner. */
    userId: string;
    /**
     * The request carries a valid HMAC signature for its path (a task's `signed_url`): it may
     * read that one image whoever owns it, without an API key (src/api/image-delivery.ts).
     */
    signedAccess: boolean;
    /** Set on the worker routes only: the worker token the remote worker presented. */
    worker: WorkerPrincipal | null;
  }
  interface FastifyContextConfig {
    /** An admin-only route: the auth hook answers 403 ADMIN_REQUIRED to anyone else. */
    admin?: boolean;
  }
}

/**
 * Who a signed image request acts as: nobody in particular, without admin rights; the image
 * routes read `signedAccess` and serve the signed path's image whoever owns it.
 */
const SIGNED_URL_READER: Principal = Object.freeze({ userId: LOCAL_USER_ID, role: 'user', keyId: null });

/** Keyless requests in local mode act as the built-in local user, an admin (migration 0009). */
export const LOCAL_ADMIN: Principal = Object.freeze({ userId: LOCAL_USER_ID, role: 'admin', keyId: null });

/**
 * Routes anyone may call: health, the docs, the home page, and the token-status view (guarded by
 * its own ADMIN_SECRET). Matched on the route pattern, so a query string changes nothing.
 */
export function isPublicRoute(route: string | undefined): boolean {
  if (route === undefined) return false;
  return (
    route === '/' ||
    route === '/healthz' ||
    route === '/readyz' ||
    route === '/openapi.json' ||
    route === '/api/token-status' ||
    route === '/docs' ||
    route.startsWith('/docs/')
  );
}

/**
 * Admin-only routes: everything under `/v1/admin/`, and any route declared with
 * `config: { admin: true }`. One rule, read by the auth hook and by the OpenAPI document alike,
 * so a new admin route is both guarded and documented as such.
 */
export function isAdminRoute(route: string | undefined, config: { admin?: boolean } | undefined): boolean {
  return config?.admin === true || (route !== undefined && route.startsWith('/v1/admin/'));
}

/**
 * The remote workers' routes. They answer worker tokens only, and worker tokens answer nothing
 * else: an API key (even an admin's) holds no lease and must not claim or finish attempts, and a
 * worker token on a GPU machine outside must not read users' tasks.
 */
export function isWorkerRoute(route: string | undefined): boolean {
  return route !== undefined && route.startsWith('/v1/worker/');
}

/** No principal of a user: worker routes act on leases, never on anyone's tasks or account. */
const NO_USER: Principal = Object.freeze({ userId: '', role: 'user', keyId: null });

/** `Authorization: Bearer <key>` → the key; undefined without the header. */
function bearerKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match) throw new ApiError('INVALID_API_KEY', 'Authorization must be `Bearer <API key>`');
  return match[1];
}

/**
 * Every request gets a principal before its route runs. `local`: a request without a key is the
 * local admin (so `npm start` needs no set-up on this machine); `required`: every request needs
 * a key. A key that is sent must be valid in both modes: a wrong key is never quietly ignored.
 */
export function registerAuth(
  app: FastifyInstance,
  options: { pool: Queryable; mode: AuthMode; signer?: UrlSigner | undefined },
): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.decorateRequest('userId', '');
  app.decorateRequest('signedAccess', false);
  app.decorateRequest('worker', null);
  app.addHook('onRequest', async (request) => {
    // A signed image URL stands on its signature alone: any key sent along is not looked at,
    // and a bad or expired signature is refused even when a valid key comes with it.
    if (checkSignedRequest(request, options.signer)) {
      request.principal = SIGNED_URL_READER;
      request.userId = SIGNED_URL_READER.userId;
      request.signedAccess = true;
      return;
    }
    if (isWorkerRoute(request.routeOptions.url)) {
      const token = bearerKey(request);
      if (token === undefined || !looksLikeWorkerToken(token)) throw new ApiError('WORKER_TOKEN_REQUIRED');
      const worker = await authenticateWorkerToken(options.pool, token);
      if (!worker) throw new ApiError('INVALID_WORKER_TOKEN');
      request.worker = worker;
      request.principal = NO_USER;
      request.userId = NO_USER.userId;
      return;
    }
    const key = isPublicRoute(request.routeOptions.url) ? undefined : bearerKey(request);
    if (key !== undefined && looksLikeWorkerToken(key)) throw new ApiError('WORKER_TOKEN_NOT_ALLOWED');
    let principal: Principal | undefined;
    if (key !== undefined) {
      principal = await authenticateKey(options.pool, key);
      if (!principal) throw new ApiError('INVALID_API_KEY');
    } else if (options.mode === 'local' || isPublicRoute(request.routeOptions.url)) {
      principal = LOCAL_ADMIN;
    } else {
      throw new ApiError('AUTH_REQUIRED');
    }
    request.principal = principal;
    request.userId = principal.userId;
    // Before body parsing and validation: a non-admin learns nothing about the route's input.
    if (isAdminRoute(request.routeOptions.url, request.routeOptions.config)) await requireAdmin(request);
  });
}

/** A route hook: only admins pass; anyone else gets 403 ADMIN_REQUIRED. */
export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (request.principal.role !== 'admin') throw new ApiError('ADMIN_REQUIRED');
}
