import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { buildApp } from '../../src/api/app.js';
import { EASEL_LOGO_SVG } from '../../src/api/home-page.js';
import { loadConfig } from '../../src/config/config.js';
import { createPool } from '../../src/db/pool.js';
import { Router } from '../../src/routing/router.js';
import { createProviderRegistry } from '../../src/providers/index.js';
import { createLocalStorage } from '../../src/storage/local.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase } from '../helpers/database.js';
import { rawRequest } from '../helpers/raw-http.js';

/** The HTTP surface: Host check, CORS, 405/415, safe readiness answers, `/` and `/docs`. */

let databaseUrl: string;
let easel: TestEasel;
const started: TestEasel[] = [];

async function startAnother(env: Record<string, string>, roles = { api: true, worker: false }) {
  const another = await startTestEasel(databaseUrl, { env, roles });
  started.push(another);
  return another;
}

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl, {
    env: { EASEL_PUBLIC_URL: 'https://easel.example.com', EASEL_ALLOWED_HOSTS: 'gpu-box.lan' },
  });
});
afterAll(async () => {
  for (const server of started) await server.stop();
  await easel?.stop();
});

const TASK = '0193a5b0-0000-7000-8000-000000000000';
const taskCount = async () => Number((await easel.pool.query('SELECT count(*) FROM tasks')).rows[0].count);

describe('the Host check (DNS rebinding)', () => {
  it('refuses a foreign Host on every route, documented or not, with 421 HOST_NOT_ALLOWED', async () => {
    const document = (await api<{ paths: Record<string, Record<string, unknown>> }>(easel.url, 'GET', '/openapi.json'))
      .body;
    const requests: Array<[string, string]> = [];
    for (const [path, item] of Object.entries(document.paths)) {
      const concrete = path.replace('{id}', TASK).replace('{index}', '0');
      for (const method of Object.keys(item)) requests.push([method.toUpperCase(), concrete]);
    }
    requests.push(
      ['GET', '/'],
      ['GET', '/docs'],
      ['GET', '/openapi.json'],
      ['GET', '/nowhere'],
      ['DELETE', '/v1/tasks'],
    );
    expect(requests.length).toBeGreaterThan(12);

    for (const [method, path] of requests) {
      const isProbe = path === '/healthz' || path === '/readyz';
      const response = await rawRequest(easel.url, method, path, {
        headers: { host: 'rebound.attacker.example:8080', 'content-type': 'application/json' },
        body: method === 'POST' ? JSON.stringify({ prompt: 'exfiltrate' }) : undefined,
      });
      if (isProbe) {
        expect(response.status, `${method} ${path}`).toBe(200);
        continue;
      }
      expect(response.status, `${method} ${path}: ${response.text}`).toBe(421);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json).toMatchObject({ code: 'HOST_NOT_ALLOWED', status: 421 });
      expect(response.json?.detail).toContain('EASEL_ALLOWED_HOSTS');
    }
    // The refused submit created nothing.
    expect(await taskCount()).toBe(0);
  });

  it('refuses a request with no Host at all', async () => {
    // HTTP/1.0 allows leaving Host out; a browser never does, but nothing else may pass for us.
    const response = await rawRequest(easel.url, 'GET', '/v1/queue', { omitHost: true });
    // Node itself refuses an HTTP/1.1 request without Host (400); either way it is not served.
    expect([400, 421]).toContain(response.status);
  });

  it('answers loopback names, *.localhost, the public URL host and EASEL_ALLOWED_HOSTS, at any port', async () => {
    const port = new URL(easel.url).port;
    for (const host of [
      `127.0.0.1:${port}`,
      'localhost',
      'LOCALHOST:9999',
      'localhost.:80',
      '[::1]:8080',
      'console.localhost:3000',
      'easel.example.com',
      'easel.example.com:443',
      'gpu-box.lan:8080',
      'GPU-Box.LAN',
    ]) {
      const response = await rawRequest(easel.url, 'GET', '/v1/queue', { headers: { host } });
      expect(response.status, `Host: ${host}: ${response.text}`).toBe(200);
    }
  });

  it('can be turned off with EASEL_ALLOWED_HOSTS=*', async () => {
    const open = await startAnother({ EASEL_ALLOWED_HOSTS: '*' });
    const response = await rawRequest(open.url, 'GET', '/v1/queue', { headers: { host: 'anything.example' } });
    expect(response.status).toBe(200);
  });
});

describe('CORS', () => {
  const preflight = (base: string, origin: string) =>
    rawRequest(base, 'OPTIONS', '/v1/tasks', {
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, idempotency-key',
      },
    });

  it('is off by default: a preflight gets no CORS headers', async () => {
    const response = await preflight(easel.url, 'https://app.example.com');
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
    expect(response.headers['access-control-allow-methods']).toBeUndefined();
    expect(response.status).toBe(405);
    const simple = await rawRequest(easel.url, 'GET', '/v1/queue', { headers: { origin: 'https://app.example.com' } });
    expect(simple.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers the origins in EASEL_CORS_ORIGINS, and only those, streams included', async () => {
    const withCors = await startAnother({ EASEL_CORS_ORIGINS: 'https://app.example.com,http://localhost:5173' });
    const allowed = await preflight(withCors.url, 'https://app.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(allowed.headers['access-control-allow-headers']).toLowerCase()).toContain('idempotency-key');
    expect(String(allowed.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');

    const other = await preflight(withCors.url, 'https://elsewhere.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();

    const submit = await rawRequest(withCors.url, 'POST', '/v1/tasks', {
      headers: { origin: 'http://localhost:5173', 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'from a console' }),
    });
    expect(submit.status).toBe(202);
    expect(submit.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(String(submit.headers['access-control-expose-headers'])).toContain('Location');

    // The event stream writes its own head; it must carry the CORS headers all the same.
    const stream = await rawRequest(withCors.url, 'GET', '/v1/events', {
      headers: { origin: 'https://app.example.com' },
    });
    expect(stream.status).toBe(200);
    expect(stream.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });
});

describe('methods and media types', () => {
  it('answers a JSON body sent as text/plain with 415 UNSUPPORTED_MEDIA_TYPE, creating nothing', async () => {
    const before = await taskCount();
    const response = await rawRequest(easel.url, 'POST', '/v1/tasks', {
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ prompt: 'a lighthouse' }),
    });
    expect(response.status, response.text).toBe(415);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 });
    expect(await taskCount()).toBe(before);
  });

  it('answers a wrong method with 405 METHOD_NOT_ALLOWED and the Allow header', async () => {
    for (const [method, path, allow] of [
      ['DELETE', '/v1/tasks', 'GET, HEAD, POST'],
      ['PUT', `/v1/tasks/${TASK}`, 'GET, HEAD'],
      ['GET', `/v1/tasks/${TASK}/cancel`, 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', `/v1/tasks/${TASK}/images/0`, 'GET, HEAD'],
    ] as const) {
      const response = await rawRequest(easel.url, method, path);
      expect(response.status, `${method} ${path}: ${response.text}`).toBe(405);
      expect(response.headers.allow, `${method} ${path}`).toBe(allow);
      expect(response.json).toMatchObject({ code: 'METHOD_NOT_ALLOWED', status: 405 });
    }
  });

  it('still answers an unknown path with 404 ROUTE_NOT_FOUND', async () => {
    const response = await rawRequest(easel.url, 'GET', '/v1/nothing-here');
    expect(response.status).toBe(404);
    expect(response.json).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    expect(response.headers.allow).toBeUndefined();
  });
});

describe('readiness answers carry no server internals', () => {
  it('says storage is not writable without naming the path', async () => {
    // A data directory that is a file: images/ cannot be made under it, whoever runs the test.
    const notADirectory = path.join(await mkdtemp(path.join(os.tmpdir(), 'easel-readyz-')), 'file');
    await writeFile(notADirectory, '');
    const broken = await startAnother({ EASEL_DATA_DIR: notADirectory });
    const response = await rawRequest(broken.url, 'GET', '/readyz');
    expect(response.status).toBe(503);
    expect(response.json).toMatchObject({ code: 'NOT_READY', detail: 'storage is not writable' });
    expect(response.text).not.toContain(os.tmpdir());
    expect(response.text).not.toMatch(/ENOTDIR|mkdir/);
  });

  it('says the database is not reachable without the driver error', async () => {
    const config = loadConfig({ PORT: '0' });
    const pool = createPool('postgres://easel:secret@127.0.0.1:1/nowhere');
    const app = await buildApp({
      config,
      pool,
      registry: createProviderRegistry(),
      storage: createLocalStorage('/tmp/easel-unused'),
      hub: undefined as never,
      // Only the routes list reads the task service when the app is built.
      tasks: { router: new Router(createProviderRegistry(), [], 'sketch') } as never,
      credentials: undefined as never,
      availability: undefined as never,
      log: pino({ level: 'silent' }),
    });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      const response = await rawRequest(url, 'GET', '/readyz');
      expect(response.status).toBe(503);
      expect(response.json).toMatchObject({ code: 'NOT_READY', detail: 'the database is not reachable' });
      expect(response.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|secret|nowhere/);
    } finally {
      await app.close();
      await pool.end();
    }
  });

  it('is ready on a healthy server', async () => {
    const response = await rawRequest(easel.url, 'GET', '/readyz');
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ status: 'ready' });
  });
});

describe('the pages', () => {
  it('serves a small HTML page at / that says what Easel is and links to the docs', async () => {
    const response = await rawRequest(easel.url, 'GET', '/');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.text).toContain('image-generation gateway');
    for (const link of ['href="/docs"', 'href="/openapi.json"']) expect(response.text).toContain(link);
    expect(response.text).toContain(`curl -s ${easel.url}/v1/tasks`);
  });

  it("shows /docs as Easel's: title, Easel's logo and favicon, no Swagger top bar", async () => {
    const page = await rawRequest(easel.url, 'GET', '/docs/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<title>Easel API</title>');
    expect(page.text).toContain('theme/easel.svg');
    expect(page.text).not.toContain('favicon-32x32.png');
    const initializer = await rawRequest(easel.url, 'GET', '/docs/static/swagger-initializer.js');
    expect(initializer.text).toContain('BaseLayout');
    expect(initializer.text).toContain(Buffer.from(EASEL_LOGO_SVG).toString('base64'));
    const document = (await rawRequest(easel.url, 'GET', '/openapi.json')).json as { info: Record<string, string> };
    expect(document.info.title).toBe('Easel API');
    expect(document.info.description).toContain('image generation');
  });
});
