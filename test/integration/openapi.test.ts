import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../src/api/openapi-document.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase } from '../helpers/database.js';

interface Operation {
  operationId?: string;
  security?: unknown[];
  parameters?: Array<{ in: string; name: string }>;
  responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }>;
  requestBody?: unknown;
}
interface Document {
  info: { title: string; license?: unknown };
  servers?: unknown[];
  security?: unknown[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
}

let easel: TestEasel;
let document: Document;

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), { roles: { api: true, worker: false } });
  const response = await api<Document>(easel.url, 'GET', '/openapi.json');
  expect(response.status).toBe(200);
  document = response.body;
});
afterAll(async () => {
  await easel?.stop();
});

const operations = () =>
  Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, operation })),
  );
const operation = (method: string, path: string) => document.paths[path]![method]!;
const statuses = (method: string, path: string) => Object.keys(operation(method, path).responses).sort();

describe('/openapi.json', () => {
  it('gives every operation a unique operationId', () => {
    const ids = operations().map(({ operation }) => operation.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(11);
  });

  it('declares every error body as application/problem+json, and only that', () => {
    for (const { key, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        expect(Object.keys(response.content ?? {}), `${key} ${status}`).toEqual(['application/problem+json']);
      }
    }
    expect(document.components.schemas.Problem).toBeDefined();
  });

  it('declares the event stream as text/event-stream, with Last-Event-ID', () => {
    const events = operation('get', '/v1/events');
    expect(Object.keys(events.responses['200']!.content!)).toEqual(['text/event-stream']);
    expect(events.parameters).toContainEqual(expect.objectContaining({ in: 'header', name: 'Last-Event-ID' }));
  });

  it('declares the image route with its bytes, 304, 404 and 410, ETag and Cache-Control', () => {
    const image = operation('get', '/v1/tasks/{id}/images/{index}');
    expect(Object.keys(image.responses['200']!.content!)).toEqual(['image/png', 'image/jpeg', 'image/webp']);
    expect(statuses('get', '/v1/tasks/{id}/images/{index}')).toEqual([
      '200',
      '304',
      '400',
      '401',
      '404',
      '410',
      '421',
      '429',
      '503',
    ]);
    expect(Object.keys(image.responses['200']!.headers!)).toEqual(['ETag', 'Cache-Control']);
    expect(Object.keys(image.responses['304']!.headers!)).toEqual(['ETag', 'Cache-Control']);
    const thumbnail = operation('get', '/v1/tasks/{id}/images/{index}/thumbnail');
    expect(Object.keys(thumbnail.responses['200']!.content!)).toEqual(['image/webp']);
    expect(Object.keys(thumbnail.responses['200']!.headers!)).toEqual(['ETag', 'Cache-Control']);
  });

  it('lists the statuses each operation can answer, no more, no fewer', () => {
    // Every keyed route may answer 401 (no key, or a bad one) and 429 (the key's rate limit);
    // admin routes 403 too. The rest is each route's own.
    const expected: Record<string, string[]> = {
      'POST /v1/tasks': ['200', '202', '400', '401', '402', '409', '413', '415', '421', '429', '503'],
      'GET /v1/events': ['200', '400', '401', '404', '410', '421', '429', '503'],
      'GET /v1/providers': ['200', '401', '421', '429', '503'],
      'GET /v1/routes': ['200', '401', '421', '429'],
      'GET /v1/tasks': ['200', '400', '401', '421', '429', '503'],
      'GET /v1/tasks/{id}': ['200', '400', '401', '404', '421', '429', '503'],
      'POST /v1/tasks/{id}/cancel': ['200', '202', '400', '401', '404', '409', '413', '415', '421', '429', '503'],
      'POST /v1/tasks/{id}/retry': ['202', '400', '401', '402', '404', '409', '413', '415', '421', '429', '503'],
      'POST /v1/uploads': ['201', '400', '401', '413', '415', '421', '429', '503'],
      'GET /v1/tasks/{id}/input-image': ['200', '304', '400', '401', '404', '421', '429', '503'],
      'GET /v1/tasks/{id}/images/{index}/thumbnail': ['200', '304', '400', '401', '404', '421', '429', '503'],
      'GET /v1/me/balance': ['200', '401', '421', '429', '503'],
      'GET /v1/me/ledger': ['200', '400', '401', '421', '429', '503'],
      'POST /v1/users/{id}/credits': ['201', '400', '401', '403', '404', '409', '413', '415', '421', '429', '503'],
      'POST /v1/users': ['201', '400', '401', '403', '409', '413', '415', '421', '429', '503'],
      'GET /v1/users': ['200', '400', '401', '403', '421', '429', '503'],
      'GET /v1/users/{id}': ['200', '400', '401', '404', '421', '429', '503'],
      'DELETE /v1/users/{id}': ['204', '400', '401', '403', '404', '409', '413', '415', '421', '429', '503'],
      'GET /v1/me': ['200', '401', '421', '429', '503'],
      'POST /v1/users/{id}/keys': ['201', '400', '401', '404', '413', '415', '421', '429', '503'],
      'GET /v1/users/{id}/keys': ['200', '400', '401', '404', '421', '429', '503'],
      'DELETE /v1/keys/{id}': ['200', '400', '401', '404', '413', '415', '421', '429', '503'],
    };
    const actual = Object.fromEntries(
      Object.keys(expected).map((key) => {
        const [method, path] = key.split(' ') as [string, string];
        return [key, statuses(method.toLowerCase(), path)];
      }),
    );
    expect(actual).toEqual(expected);
  });

  it('declares 429 RATE_LIMITED with Retry-After on every keyed route and on none of the public ones', () => {
    for (const { key, operation } of operations()) {
      const response = operation.responses['429'] as { description?: string; headers?: Record<string, unknown> };
      // Probes are public; worker routes take worker tokens, which have no per-key budget.
      if (key === 'GET /healthz' || key === 'GET /readyz' || key.includes(' /v1/worker/')) {
        expect(response, key).toBeUndefined();
        continue;
      }
      expect(response?.description, key).toMatch(/RATE_LIMITED/);
      expect(Object.keys(response.headers ?? {}), key).toContain('Retry-After');
    }
    expect(operation('post', '/v1/tasks').responses['429']).toMatchObject({
      description: expect.stringMatching(/TOO_MANY_ACTIVE_TASKS/),
    });
    expect(operation('post', '/v1/tasks').responses['400']).toMatchObject({
      description: expect.stringMatching(/PRIORITY_NOT_ALLOWED/),
    });
  });

  it('declares the upload route as multipart with one file field, and the input-image route as PNG bytes', () => {
    const upload = operation('post', '/v1/uploads');
    expect(upload.operationId).toBe('createUpload');
    const body = upload.requestBody as { required: boolean; content: Record<string, { schema: unknown }> };
    expect(body.required).toBe(true);
    expect(Object.keys(body.content)).toEqual(['multipart/form-data']);
    expect(body.content['multipart/form-data']!.schema).toMatchObject({
      required: ['image'],
      properties: { image: { type: 'string', format: 'binary' } },
    });
    const input = operation('get', '/v1/tasks/{id}/input-image');
    expect(input.operationId).toBe('getTaskInputImage');
    expect(Object.keys(input.responses['200']!.content!)).toEqual(['image/png']);
  });

  it('declares the submit body as JSON and as a form with the same fields and an image file', () => {
    const body = operation('post', '/v1/tasks').requestBody as {
      content: Record<
        string,
        { schema: { properties: Record<string, unknown>; required: string[] }; encoding?: unknown }
      >;
    };
    expect(Object.keys(body.content)).toEqual(['application/json', 'multipart/form-data']);
    const json = body.content['application/json']!.schema;
    const form = body.content['multipart/form-data']!;
    expect(Object.keys(form.schema.properties)).toEqual(Object.keys(json.properties));
    expect(form.schema.required).toEqual(['prompt']);
    expect(form.schema.properties.image).toMatchObject({ type: 'string', format: 'binary' });
    expect(form.encoding).toMatchObject({ provider_options: { contentType: 'application/json' } });
  });

  it('documents GET /api/token-status only when ADMIN_SECRET is set', async () => {
    expect(document.paths['/api/token-status']).toBeUndefined();
    const withSecret = (await buildOpenApiDocument({ ADMIN_SECRET: 'a-secret-of-enough-length' })) as Document;
    const tokenStatus = withSecret.paths['/api/token-status']!.get!;
    expect(tokenStatus.operationId).toBe('getTokenStatus');
    expect(Object.keys(tokenStatus.responses).sort()).toEqual(['200', '400', '401', '421', '503']);
  });

  it('declares the submit answer headers', () => {
    for (const status of ['200', '202']) {
      expect(Object.keys(operation('post', '/v1/tasks').responses[status]!.headers!)).toEqual([
        'Location',
        'Preference-Applied',
        'Idempotent-Replayed',
      ]);
    }
  });

  it('lists the admin views with their statuses, 403 ADMIN_REQUIRED among them', () => {
    const reads = ['200', '400', '401', '403', '421', '429', '503'];
    const writes = ['200', '400', '401', '403', '413', '415', '421', '429', '503'];
    expect(statuses('get', '/v1/admin/tasks')).toEqual(reads);
    expect(statuses('get', '/v1/admin/dead-letters')).toEqual(reads);
    expect(statuses('post', '/v1/admin/dead-letters/retry')).toEqual(writes);
    expect(statuses('post', '/v1/admin/dead-letters/purge')).toEqual(writes);
    expect(statuses('get', '/v1/admin/stats')).toEqual(reads);
    expect(statuses('post', '/v1/admin/queue/clear')).toEqual(writes);
    expect(statuses('get', '/v1/admin/users')).toEqual(reads);
    const forbidden = operation('post', '/v1/admin/queue/clear').responses['403'] as { description?: string };
    expect(forbidden.description).toContain('ADMIN_REQUIRED');
    expect(operation('get', '/v1/admin/tasks').operationId).toBe('listAllTasks');
  });

  it('lists the licence API billing routes with their statuses', () => {
    expect(statuses('get', '/v1/admin/billing/unreconciled')).toEqual([
      '200',
      '400',
      '401',
      '403',
      '421',
      '429',
      '503',
    ]);
    expect(statuses('post', '/v1/admin/billing/reconcile')).toEqual([
      '200',
      '400',
      '401',
      '403',
      '409',
      '413',
      '415',
      '421',
      '429',
      '503',
    ]);
    expect(operation('post', '/v1/admin/billing/reconcile').operationId).toBe('reconcileCharges');
    const unavailable = operation('post', '/v1/tasks').responses['503'] as { description?: string };
    expect(unavailable.description).toContain('BILLING_UNAVAILABLE');
    const retry = operation('post', '/v1/tasks/{id}/retry').responses['503'] as { description?: string };
    expect(retry.description).toContain('BILLING_UNAVAILABLE');
  });

  it('is the document `npm run lint:openapi` checks, built without a database', async () => {
    expect(await buildOpenApiDocument()).toEqual(document);
    expect(document.info.title).toBe('Easel API');
    expect(document.servers).toEqual([{ url: '/' }]);
    expect(document.security).toEqual([{ apiKey: [] }]);
  });

  it('declares a bearer scheme, and security on every operation from its access: public, keyed or admin', async () => {
    expect(document.components.securitySchemes).toEqual({
      apiKey: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      workerToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    const withSecret = (await buildOpenApiDocument({ ADMIN_SECRET: 'a-secret-of-enough-length' })) as Document;
    const all = Object.entries(withSecret.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ method, path, operation })),
    );
    const publicRoutes = ['/healthz', '/readyz', '/api/token-status'];
    for (const { method, path, operation } of all) {
      const key = `${method} ${path}`;
      if (publicRoutes.includes(path)) {
        expect(operation.security, key).toEqual([]);
        continue;
      }
      if (path.startsWith('/v1/worker/')) {
        expect(operation.security, key).toEqual([{ workerToken: [] }]);
        const refused = operation.responses['401'] as { description: string };
        expect(refused.description, key).toContain('WORKER_TOKEN_REQUIRED');
        expect(refused.description, key).toContain('INVALID_WORKER_TOKEN');
        expect(Object.keys(operation.responses), key).not.toContain('403');
        continue;
      }
      expect(operation.security, key).toEqual([{ apiKey: [] }]);
      const unauthorized = operation.responses['401'] as { description: string; headers: Record<string, unknown> };
      expect(unauthorized.description, key).toContain('AUTH_REQUIRED');
      expect(unauthorized.description, key).toContain('INVALID_API_KEY');
      expect(Object.keys(unauthorized.headers), key).toContain('WWW-Authenticate');
      const adminOnly =
        path.startsWith('/v1/admin/') ||
        (path.startsWith('/v1/users') && !/keys$|\{id\}$/.test(path)) ||
        (path === '/v1/users/{id}' && method !== 'get');
      expect(Object.keys(operation.responses).includes('403'), key).toBe(adminOnly);
      if (adminOnly)
        expect((operation.responses['403'] as { description: string }).description).toContain('ADMIN_REQUIRED');
    }
  });
});

describe('what the document promises, the API does', () => {
  it('answers a 404 as application/problem+json', async () => {
    const response = await fetch(`${easel.url}/v1/tasks/0193a5b0-0000-7000-8000-000000000000`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('answers 413 to an oversized submit', async () => {
    const response = await fetch(`${easel.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x'.repeat(easel.config.bodyLimitBytes) }),
    });
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});
