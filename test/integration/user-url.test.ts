import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createUserUrlFetcher,
  UserUrlFailed,
  UserUrlRefused,
  type FetchUserUrl,
  type ResolvedAddress,
  type UserUrlFetcherOptions,
} from '../../src/net/user-url.js';

/**
 * Everything here stays on loopback. Linux answers on all of 127/8, so a server on 127.0.0.2,
 * declared public through `treatAsPublic`, stands in for a server on the internet, while
 * 127.0.0.1 stays what it is: loopback, to be refused. Names are resolved by a scripted lookup.
 */

interface TestServer {
  host: string;
  port: number;
  origin: string;
  /** Paths requested, in order. */
  hits: string[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, server: TestServer) => void;

async function startServer(host: string, handler: Handler, port = 0): Promise<TestServer> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res, testServer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  const testServer: TestServer = {
    host,
    port: actualPort,
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return testServer;
}

let png: Buffer;
const servers: TestServer[] = [];

function serve(req: IncomingMessage, res: ServerResponse, self: TestServer): void {
  const url = new URL(req.url ?? '/', self.origin);
  const redirect = (location: string) => res.writeHead(302, { location }).end();
  switch (url.pathname) {
    case '/image.png':
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png);
      return;
    case '/redirect':
      redirect(url.searchParams.get('to') ?? '/image.png');
      return;
    case '/loop':
      redirect('/loop');
      return;
    case '/missing':
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such image');
      return;
    case '/large-declared':
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 5000 }).end(Buffer.alloc(5000));
      return;
    case '/large-streamed': {
      // No Content-Length: chunked, so only counting the bytes as they come can catch it.
      res.writeHead(200, { 'content-type': 'image/png' });
      for (let i = 0; i < 10; i += 1) res.write(Buffer.alloc(500));
      res.end();
      return;
    }
    case '/stall-headers':
      return; // never answers
    case '/stall-body':
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.write(png.subarray(0, 10));
      return; // never finishes
    default:
      res.writeHead(404).end();
  }
}

let publicServer: TestServer; // 127.0.0.2, treated as public
let privateServer: TestServer; // 127.0.0.1, loopback

const publicNames: Record<string, ResolvedAddress[]> = {
  'public.test': [{ address: '127.0.0.2', family: 4 }],
  'private.test': [{ address: '192.168.1.1', family: 4 }],
  'loopback.test': [{ address: '127.0.0.1', family: 4 }],
  'mixed.test': [
    { address: '127.0.0.2', family: 4 },
    { address: '10.0.0.1', family: 4 },
  ],
  'mapped.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
  'metadata.test': [{ address: '169.254.169.254', family: 4 }],
};

async function scriptedLookup(hostname: string): Promise<ResolvedAddress[]> {
  const answer = publicNames[hostname];
  if (!answer) throw Object.assign(new Error(`no test answer for ${hostname}`), { code: 'ENOTFOUND' });
  return answer;
}

function fetcher(overrides: Partial<UserUrlFetcherOptions> = {}): FetchUserUrl {
  return createUserUrlFetcher({
    allowPrivate: false,
    maxBytes: 1000,
    timeoutMs: 5000,
    lookup: scriptedLookup,
    treatAsPublic: ['127.0.0.2'],
    ...overrides,
  });
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the fetch to fail, and it succeeded');
}

beforeAll(async () => {
  png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#c04020' } })
    .png()
    .toBuffer();
  expect(png.length).toBeLessThan(1000);
  publicServer = await startServer('127.0.0.2', serve);
  privateServer = await startServer('127.0.0.1', serve);
  servers.push(publicServer, privateServer);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('refused before any connection', () => {
  const vectors = (): string[] => {
    const p = privateServer.port;
    return [
      `http://127.0.0.1:${p}/image.png`,
      `http://127.255.255.254:${p}/image.png`,
      `http://10.0.0.1:${p}/image.png`,
      `http://172.16.0.1:${p}/image.png`,
      `http://192.168.1.1:${p}/image.png`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://[::1]:${p}/image.png`,
      `http://[::ffff:127.0.0.1]:${p}/image.png`,
      `http://[::ffff:7f00:1]:${p}/image.png`,
      `http://[64:ff9b::7f00:1]:${p}/image.png`,
      `http://[2002:7f00:1::]:${p}/image.png`,
      `http://2130706433:${p}/image.png`,
      `http://0177.0.0.1:${p}/image.png`,
      `http://0x7f.1:${p}/image.png`,
      `http://0x7f000001:${p}/image.png`,
      `http://127.1:${p}/image.png`,
      `http://0.0.0.0:${p}/image.png`,
      `http://0:${p}/image.png`,
      `http://100.64.0.1:${p}/image.png`,
      `http://[fd00::1]:${p}/image.png`,
      `http://[fe80::1]:${p}/image.png`,
      `http://[::]:${p}/image.png`,
      `http://private.test:${p}/image.png`,
      `http://loopback.test:${p}/image.png`,
      `http://mapped.test:${p}/image.png`,
      `http://metadata.test/latest/meta-data/`,
      // One public and one private address: refused, whichever the connection would have used.
      `http://mixed.test:${publicServer.port}/image.png`,
    ];
  };

  it('refuses every private, loopback, link-local, unique-local and special address, in every notation', async () => {
    const fetch = fetcher();
    for (const url of vectors()) {
      const error = await failure(fetch(url));
      expect(error, url).toBeInstanceOf(UserUrlRefused);
      expect((error as UserUrlRefused).reason, url).toBe('address');
    }
    expect(privateServer.hits).toEqual([]);
    expect(publicServer.hits).toEqual([]);
  });

  it('refuses localhost as the system resolver answers it (/etc/hosts)', async () => {
    const fetch = fetcher({ lookup: undefined });
    const error = await failure(fetch(`http://localhost:${privateServer.port}/image.png`));
    expect(error).toBeInstanceOf(UserUrlRefused);
    expect(error.message).toMatch(/loopback/);
    // The address stays out of the message a user sees; logs get it from the property.
    expect(error.message).not.toMatch(/127\.0\.0\.1/);
    expect((error as UserUrlRefused).address).toMatch(/^(127\.0\.0\.1|::1)$/);
    expect(privateServer.hits).toEqual([]);
  });

  it.each([
    ['file:///etc/passwd', 'scheme'],
    ['ftp://public.test/image.png', 'scheme'],
    ['data:image/png;base64,iVBORw0KGgo=', 'scheme'],
    ['gopher://public.test:70/_GET', 'scheme'],
    ['http://user:pass@public.test/image.png', 'credentials'],
    ['http://public.test@127.0.0.1/image.png', 'credentials'],
    ['nonsense', 'invalid_url'],
  ])('refuses %s (%s)', async (url, reason) => {
    const error = await failure(fetcher()(url));
    expect(error).toBeInstanceOf(UserUrlRefused);
    expect((error as UserUrlRefused).reason).toBe(reason);
  });

  it('refuses other schemes and credentials even when private addresses are allowed', async () => {
    const fetch = fetcher({ allowPrivate: true });
    expect(await failure(fetch('file:///etc/passwd'))).toBeInstanceOf(UserUrlRefused);
    expect(await failure(fetch(`http://a:b@127.0.0.1:${privateServer.port}/image.png`))).toBeInstanceOf(UserUrlRefused);
    expect(privateServer.hits).toEqual([]);
  });
});

describe('allowed', () => {
  it('fetches an image from a public address, bytes and content type as served', async () => {
    const result = await fetcher()(`${publicServer.origin}/image.png`);
    expect(result.bytes.equals(png)).toBe(true);
    expect(result.contentType).toBe('image/png');
  });

  it('fetches through a name, connecting to the address the check saw', async () => {
    // public.test exists only in the scripted lookup, so this also shows the connection uses it.
    const result = await fetcher()(`http://public.test:${publicServer.port}/image.png`);
    expect(result.bytes.equals(png)).toBe(true);
  });

  it('pins IPv6 answers too', async () => {
    const v6Server = await startServer('::1', serve);
    servers.push(v6Server);
    const v6Lookup = (): Promise<ResolvedAddress[]> => Promise.resolve([{ address: '::1', family: 6 }]);
    const fetch = fetcher({ lookup: v6Lookup, treatAsPublic: ['::1'] });
    expect((await fetch(`http://public6.test:${v6Server.port}/image.png`)).bytes.equals(png)).toBe(true);
    expect((await fetch(`http://[::1]:${v6Server.port}/image.png`)).bytes.equals(png)).toBe(true);
    expect(v6Server.hits).toEqual(['/image.png', '/image.png']);
  });

  it('follows redirects between public addresses, up to the limit', async () => {
    const to = encodeURIComponent(`http://public.test:${publicServer.port}/redirect?to=/image.png`);
    const result = await fetcher({ maxRedirects: 2 })(`${publicServer.origin}/redirect?to=${to}`);
    expect(result.bytes.equals(png)).toBe(true);
  });

  it('lets private addresses through with allowPrivate (self-hosted networks)', async () => {
    const fetch = fetcher({ allowPrivate: true, lookup: undefined, treatAsPublic: [] });
    expect((await fetch(`${privateServer.origin}/image.png`)).bytes.equals(png)).toBe(true);
    expect((await fetch(`http://localhost:${privateServer.port}/image.png`)).bytes.equals(png)).toBe(true);
    privateServer.hits.length = 0;
  });
});

describe('redirects and DNS rebinding', () => {
  it('refuses a redirect from a public server to a private address, without requesting it', async () => {
    const hitsBefore = publicServer.hits.length;
    const to = encodeURIComponent(`${privateServer.origin}/image.png`);
    const error = await failure(fetcher()(`${publicServer.origin}/redirect?to=${to}`));
    expect(error).toBeInstanceOf(UserUrlRefused);
    expect((error as UserUrlRefused).reason).toBe('address');
    expect(publicServer.hits.length).toBe(hitsBefore + 1);
    expect(privateServer.hits).toEqual([]);
  });

  it('refuses a redirect to a name that resolves to a private address', async () => {
    const to = encodeURIComponent(`http://loopback.test:${privateServer.port}/image.png`);
    const error = await failure(fetcher()(`${publicServer.origin}/redirect?to=${to}`));
    expect((error as UserUrlRefused).reason).toBe('address');
    expect(privateServer.hits).toEqual([]);
  });

  it('refuses a redirect to another scheme', async () => {
    const error = await failure(fetcher()(`${publicServer.origin}/redirect?to=file:///etc/passwd`));
    expect((error as UserUrlRefused).reason).toBe('scheme');
  });

  it('refuses more than maxRedirects redirects', async () => {
    const hitsBefore = publicServer.hits.length;
    const error = await failure(fetcher({ maxRedirects: 3 })(`${publicServer.origin}/loop`));
    expect(error).toBeInstanceOf(UserUrlRefused);
    expect((error as UserUrlRefused).reason).toBe('too_many_redirects');
    expect(publicServer.hits.length - hitsBefore).toBe(4); // the first request and three redirects
  });

  it('connects to the checked address even when the name answers differently on a second lookup', async () => {
    // Two servers on the same port: the checked public one, and a loopback one a second
    // resolution would lead to.
    const checked = await startServer('127.0.0.2', serve);
    servers.push(checked);
    const rebound = await startServer('127.0.0.1', serve, checked.port);
    servers.push(rebound);
    const answers: ResolvedAddress[][] = [[{ address: '127.0.0.2', family: 4 }], [{ address: '127.0.0.1', family: 4 }]];
    let lookups = 0;
    const rebinding = (): Promise<ResolvedAddress[]> => Promise.resolve(answers[Math.min(lookups++, 1)]!);

    const result = await fetcher({ lookup: rebinding })(`http://rebind.test:${checked.port}/image.png`);

    expect(result.bytes.equals(png)).toBe(true);
    expect(checked.hits).toEqual(['/image.png']);
    expect(rebound.hits).toEqual([]);
    expect(lookups).toBe(1);
  });
});

describe('failures', () => {
  it('fails on an HTTP error status', async () => {
    const error = await failure(fetcher()(`${publicServer.origin}/missing`));
    expect(error).toBeInstanceOf(UserUrlFailed);
    expect(error.message).toMatch(/HTTP 404/);
  });

  it('fails when nothing listens', async () => {
    const closed = await startServer('127.0.0.2', serve);
    await closed.close();
    const error = await failure(fetcher()(`${closed.origin}/image.png`));
    expect(error).toBeInstanceOf(UserUrlFailed);
    expect(error.message).toMatch(/ECONNREFUSED/);
  });

  it('fails when a name does not resolve', async () => {
    const error = await failure(fetcher()('http://unknown.test/image.png'));
    expect(error).toBeInstanceOf(UserUrlFailed);
  });

  it('fails on a body larger than maxBytes by its Content-Length', async () => {
    const error = await failure(fetcher({ maxBytes: 1000 })(`${publicServer.origin}/large-declared`));
    expect(error).toBeInstanceOf(UserUrlFailed);
    expect(error.message).toMatch(/Content-Length 5000/);
  });

  it('fails on a body larger than maxBytes while streaming, without a Content-Length', async () => {
    const error = await failure(fetcher({ maxBytes: 1000 })(`${publicServer.origin}/large-streamed`));
    expect(error).toBeInstanceOf(UserUrlFailed);
    expect(error.message).toMatch(/larger than 1000 bytes/);
  });

  it.each(['/stall-headers', '/stall-body'])('fails at the deadline on a server that stalls (%s)', async (path) => {
    const started = Date.now();
    const error = await failure(fetcher({ timeoutMs: 300 })(`${publicServer.origin}${path}`));
    expect(error).toBeInstanceOf(UserUrlFailed);
    expect(error.message).toMatch(/within 300 ms/);
    // Generous bound: this checks that the deadline applies, not how fast anything is.
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('counts the deadline across redirects and the name lookup', async () => {
    const slowLookup = (): Promise<ResolvedAddress[]> => new Promise(() => {});
    const error = await failure(fetcher({ timeoutMs: 200, lookup: slowLookup })('http://slow.test/image.png'));
    expect(error).toBeInstanceOf(UserUrlFailed);
    expect(error.message).toMatch(/within 200 ms/);
  });
});
