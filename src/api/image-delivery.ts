import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.js';
import type { Storage } from '../storage/storage.js';

/**
 * How image bytes reach clients, shared by every image route (images, input image, thumbnails):
 * the stable Easel URL either redirects to the store (public or presigned URL) or streams the
 * bytes itself; and HMAC-signed variants of those URLs let an `<img>` tag fetch an image without
 * an API key until the signature expires.
 */

/** Route patterns whose URLs may be signed; the auth hook lets a valid signature through on these only. */
export const SIGNABLE_ROUTES: ReadonlySet<string> = new Set([
  '/v1/tasks/:id/images/:index',
  '/v1/tasks/:id/images/:index/thumbnail',
  '/v1/tasks/:id/input-image',
]);

/** Query parameters of a signed URL, documented on each signable route. */
export const SIGNED_QUERY_DESCRIPTION = {
  expires: 'Unix time (seconds) after which the signed URL stops working.',
  signature: "HMAC-SHA256 of the path and `expires` (base64url), from a task's `signed_url`; no API key needed.",
};

export type SignatureVerdict = 'valid' | 'expired' | 'invalid';

/** Signs and checks `<path>?expires=<unix>&signature=<base64url hmac>`. */
export class UrlSigner {
  readonly #key: Buffer;
  constructor(
    key: Buffer,
    readonly lifetimeSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#key = Buffer.from(key);
  }

  /** `path` is the URL's path only (no origin, no query): the origin may differ behind a proxy. */
  sign(path: string): string {
    const expires = Math.floor(this.now() / 1000) + this.lifetimeSeconds;
    return `${path}?expires=${expires}&signature=${this.#mac(path, expires)}`;
  }

  verify(path: string, expires: string | undefined, signature: string | undefined): SignatureVerdict {
    if (expires === undefined || signature === undefined || !/^\d{1,12}$/.test(expires)) return 'invalid';
    const expected = Buffer.from(this.#mac(path, Number(expires)));
    const given = Buffer.from(signature);
    // Signature first: an expired verdict would otherwise tell a forger which times exist.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return Number(expires) * 1000 < this.now() ? 'expired' : 'valid';
  }

  #mac(path: string, expires: number): string {
    // The method is fixed: a signed URL only ever reads.
    return createHmac('sha256', this.#key).update(`GET\n${path}\n${expires}`).digest('base64url');
  }
}

/**
 * The signature check for the auth hook: undefined when the request carries no signature (the
 * usual API-key rules apply), true when it is valid for this very path; a bad or expired one is
 * a 403 whatever else the request carries.
 */
export function checkSignedRequest(request: FastifyRequest, signer: UrlSigner | undefined): boolean | undefined {
  const route = request.routeOptions.url;
  // HEAD is the GET without a body (Fastify answers it from the GET route): same signature.
  if (route === undefined || !SIGNABLE_ROUTES.has(route)) return undefined;
  if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
  const query = new URLSearchParams(request.url.slice(request.url.indexOf('?') + 1 || request.url.length));
  const expires = query.get('expires') ?? undefined;
  const signature = query.get('signature') ?? undefined;
  if (expires === undefined && signature === undefined) return undefined;
  if (!signer)
    throw new ApiError('SIGNED_URL_INVALID', 'this server has no URL signing key, so no signed URL is valid');
  const path = request.url.split('?')[0]!;
  const verdict = signer.verify(path, expires, signature);
  if (verdict === 'expired') throw new ApiError('SIGNED_URL_EXPIRED');
  if (verdict === 'invalid') throw new ApiError('SIGNED_URL_INVALID');
  return true;
}

/** Absolute links in answers: EASEL_PUBLIC_URL, else the origin the request itself used. */
export interface LinkBuilder {
  /** `https://host` (no trailing slash) for this request. */
  base(request: FastifyRequest): string;
  /** The signed absolute form of `path`, or null when there is no signing key. */
  signed(request: FastifyRequest, path: string): string | null;
}

export function createLinkBuilder(publicUrl: string | undefined, signer: UrlSigner | undefined): LinkBuilder {
  // Without EASEL_PUBLIC_URL the origin comes from the connection (http or https as it arrived)
  // and the Host header, which the host check has vetted. X-Forwarded-* are not trusted: any
  // client could set them, so behind a proxy EASEL_PUBLIC_URL is the way to say the public origin.
  const base = (request: FastifyRequest) => publicUrl ?? `${request.protocol}://${request.host}`;
  return {
    base,
    signed: (request, path) => (signer ? `${base(request)}${signer.sign(path)}` : null),
  };
}

/** Links for one answer: what the task-resource mappers need, bound to the request. */
export interface Links {
  base: string;
  signed(path: string): string | null;
}

export const linksFor = (builder: LinkBuilder, request: FastifyRequest): Links => ({
  base: builder.base(request),
  signed: (path) => builder.signed(request, path),
});

export interface StoredImageRef {
  sha256: string;
  storage_key: string;
  content_type: string;
}

/**
 * Serve an image recorded with its sha256. With a store that hands out its own URLs (S3) the
 * answer is a 302 to a fresh public or presigned URL, so the bytes never pass through Easel;
 * otherwise the bytes are streamed. The bytes behind a URL never change, so the ETag is the
 * sha256 and they may be cached for a year (privately). A recorded image whose bytes are gone
 * is a 404 and an error in the log, never a 500.
 */
export async function deliverImage(
  request: FastifyRequest,
  reply: FastifyReply,
  options: { storage: Storage; presignSeconds: number },
  image: StoredImageRef,
  what: string,
) {
  const { storage } = options;
  const etag = `"${image.sha256}"`;
  if (request.headers['if-none-match'] === etag) {
    return reply.code(304).header('etag', etag).header('cache-control', 'private, max-age=31536000, immutable').send();
  }
  // A StorageUnavailableError goes on to the problem handler: 503 STORAGE_UNAVAILABLE.
  const direct = await storage.directUrl?.(image.storage_key, { expiresInSeconds: options.presignSeconds });
  if (direct) {
    // The redirect may be reused while its target still works: half the presigned lifetime.
    return reply
      .header('cache-control', `private, max-age=${Math.floor(options.presignSeconds / 2)}`)
      .redirect(direct, 302);
  }
  const object = await storage.get(image.storage_key);
  if (!object) {
    request.log.error({ key: image.storage_key }, `${what} recorded but missing from storage`);
    throw new ApiError('IMAGE_NOT_FOUND', `the ${what} is recorded but its bytes are missing from storage`);
  }
  return reply
    .type(image.content_type)
    .header('etag', etag)
    .header('cache-control', 'private, max-age=31536000, immutable')
    .header('content-length', object.size)
    .send(object.body);
}
