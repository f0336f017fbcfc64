import { lookup as dnsLookup } from 'node:dns/promises';
import { isIPv4, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { canonicalAddress, checkAddress, type AddressCategory } from './address-policy.js';

/**
 * The one way Easel fetches a URL that a user supplied (input images now, webhooks later), guarded
 * against server-side request forgery: a user must not make Easel reach what only Easel can reach
 * (loopback services, the private network, the cloud metadata endpoint).
 *
 * Invariants:
 * - A host name is resolved once per hop, every address it resolves to is checked, and the
 *   connection is pinned to those checked addresses (a per-hop undici Agent whose `lookup` answers
 *   only them), so a DNS answer that changes between check and connect (rebinding) changes nothing.
 *   TLS still verifies the certificate against the URL's host name.
 * - Redirects are followed by hand, each target checked exactly like the first URL.
 * - One deadline covers the whole fetch (resolution, redirects, body); the body is read as bytes
 *   and abandoned as soon as it passes `maxBytes`.
 *
 * Provider endpoints and the result URLs providers return are operator configuration, not user
 * input: they are fetched directly and never pass through here.
 */

export type FetchUserUrl = (url: string) => Promise<{ bytes: Buffer; contentType: string | null }>;

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface UserUrlFetcherOptions {
  /** EASEL_ALLOW_PRIVATE_URLS: any address may be reached (self-hosted networks); URL rules still apply. */
  allowPrivate: boolean;
  /** Larger bodies fail, by Content-Length up front or while streaming. */
  maxBytes: number;
  /** The whole fetch, redirects included (EASEL_INPUT_FETCH_TIMEOUT_MS). */
  timeoutMs: number;
  /** Default 3. */
  maxRedirects?: number;
  /** Tests only: how host names are resolved (default: the system resolver, every address). */
  lookup?: (hostname: string) => Promise<ResolvedAddress[]>;
  /** Tests only: addresses to treat as public (e.g. 127.0.0.2 standing in for a public server). */
  treatAsPublic?: string[];
}

export type RefusalReason = 'invalid_url' | 'scheme' | 'credentials' | 'address' | 'too_many_redirects';

/** The URL itself is not acceptable; the caller answers 400 INPUT_IMAGE_URL_REFUSED. */
export class UserUrlRefused extends Error {
  override name = 'UserUrlRefused';
  constructor(
    readonly reason: RefusalReason,
    message: string,
    /** For logs only: the refused address is not repeated to the user (it may describe an internal network). */
    readonly address?: string,
    readonly category?: AddressCategory,
  ) {
    super(message);
  }
}

/** The URL was acceptable but fetching it did not work: unreachable, timed out, an HTTP error, too large. */
export class UserUrlFailed extends Error {
  override name = 'UserUrlFailed';
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export function createUserUrlFetcher(options: UserUrlFetcherOptions): FetchUserUrl {
  const maxRedirects = options.maxRedirects ?? 3;
  const resolve = options.lookup ?? systemLookup;
  const treatAsPublic = new Set((options.treatAsPublic ?? []).map((a) => canonicalAddress(a) ?? a));

  async function checkedAddresses(url: URL, signal: AbortSignal): Promise<ResolvedAddress[]> {
    const literal = literalAddress(url.hostname);
    const addresses = literal ? [literal] : await resolveName(url.hostname, resolve, signal);
    if (options.allowPrivate) return addresses;
    for (const { address } of addresses) {
      const verdict = checkAddress(address, treatAsPublic);
      if (!verdict.allowed) {
        throw new UserUrlRefused(
          'address',
          `${url.host} is not a public address (${verdict.category}); only public http(s) URLs are fetched`,
          address,
          verdict.category,
        );
      }
    }
    return addresses;
  }

  return async function fetchUserUrl(input) {
    const signal = AbortSignal.timeout(options.timeoutMs);
    let url = parseUserUrl(input);
    for (let redirects = 0; ; redirects += 1) {
      try {
        const addresses = await checkedAddresses(url, signal);
        const answer = await fetchPinned(url, addresses, signal, options.maxBytes);
        if (answer.kind === 'body') return { bytes: answer.bytes, contentType: answer.contentType };
        if (redirects >= maxRedirects) {
          throw new UserUrlRefused('too_many_redirects', `more than ${maxRedirects} redirects`);
        }
        url = parseUserUrl(answer.location, url);
      } catch (error) {
        if (error instanceof UserUrlRefused || error instanceof UserUrlFailed) throw error;
        if (signal.aborted) {
          throw new UserUrlFailed(`no complete answer within ${options.timeoutMs} ms`, { cause: error });
        }
        throw new UserUrlFailed(`${url.host} could not be reached (${describe(error)})`, { cause: error });
      }
    }
  };
}

/** http(s) only, no credentials. The WHATWG parser canonicalises IPv4 hosts in every notation. */
export function parseUserUrl(text: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    throw new UserUrlRefused('invalid_url', 'not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UserUrlRefused('scheme', `only http and https URLs are fetched (got ${url.protocol})`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UserUrlRefused('credentials', 'URLs with a user name or password are not fetched');
  }
  return url;
}

/** The address a URL's host names literally; undefined for a host name that must be resolved. */
function literalAddress(hostname: string): ResolvedAddress | undefined {
  // After the URL parser, an IPv4 host is always dotted-quad (`0x7f.1` → `127.0.0.1`) and any
  // other host that looks numeric was rejected, so these two tests catch every literal.
  if (hostname.startsWith('[')) return { address: hostname.slice(1, -1), family: 6 };
  if (isIPv4(hostname)) return { address: hostname, family: 4 };
  return undefined;
}

async function resolveName(
  hostname: string,
  resolve: (hostname: string) => Promise<ResolvedAddress[]>,
  signal: AbortSignal,
): Promise<ResolvedAddress[]> {
  let addresses: ResolvedAddress[];
  try {
    addresses = await untilAborted(resolve(hostname), signal);
  } catch (error) {
    if (signal.aborted) throw error;
    throw new UserUrlFailed(`${hostname} could not be resolved (${describe(error)})`, { cause: error });
  }
  if (addresses.length === 0) throw new UserUrlFailed(`${hostname} resolves to no address`);
  return addresses;
}

async function systemLookup(hostname: string): Promise<ResolvedAddress[]> {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
}

type HopAnswer = { kind: 'redirect'; location: string } | { kind: 'body'; bytes: Buffer; contentType: string | null };

/** One GET whose connection can only go to `addresses`. Never follows redirects itself. */
async function fetchPinned(
  url: URL,
  addresses: ResolvedAddress[],
  signal: AbortSignal,
  maxBytes: number,
): Promise<HopAnswer> {
  // A fresh Agent per hop: no pooled connection to some earlier address can be reused.
  const agent = new Agent({ connect: { lookup: pinnedLookup(addresses) } });
  try {
    const response = await request(url, {
      method: 'GET',
      dispatcher: agent,
      signal,
      // Identity, so that maxBytes bounds what arrives and the bytes are the image itself.
      headers: { 'accept-encoding': 'identity', 'user-agent': 'Easel' },
    });
    const { statusCode, headers, body } = response;
    const location = firstHeader(headers.location);
    if (REDIRECT_STATUSES.has(statusCode) && location !== undefined) {
      discard(body);
      return { kind: 'redirect', location };
    }
    if (statusCode < 200 || statusCode > 299) {
      discard(body);
      throw new UserUrlFailed(`${url.host} answered HTTP ${statusCode}`);
    }
    const declaredLength = Number(firstHeader(headers['content-length']) ?? NaN);
    if (declaredLength > maxBytes) {
      discard(body);
      throw new UserUrlFailed(`the body is larger than ${maxBytes} bytes (Content-Length ${declaredLength})`);
    }
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > maxBytes) {
        discard(body);
        throw new UserUrlFailed(`the body is larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return { kind: 'body', bytes: Buffer.concat(chunks), contentType: firstHeader(headers['content-type']) ?? null };
  } finally {
    await agent.destroy();
  }
}

/** A `lookup` for net/tls.connect that answers only the addresses already checked, whatever DNS says now. */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, lookupOptions, callback) => {
    const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : undefined;
    const usable = addresses.filter((a) => wanted === undefined || a.family === wanted);
    const first = usable[0];
    if (first === undefined) {
      callback(Object.assign(new Error('no checked address of the requested family'), { code: 'ENOTFOUND' }), '', 0);
    } else if (lookupOptions.all) {
      callback(null, usable);
    } else {
      callback(null, first.address, first.family);
    }
  };
}

/**
 * Drops a body not going to be read. undici's body emits an AbortError when destroyed before its
 * end; nobody waits on it any more, so that error is expected and swallowed here.
 */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
