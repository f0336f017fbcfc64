import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { insertCredential } from '../../src/credentials/store.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { createSketchProvider } from '../../src/providers/sketch/index.js';
import type { Provider } from '../../src/providers/types.js';
import { loadConfig } from '../../src/config/config.js';
import { TaskService } from '../../src/tasks/service.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';

const KEY = 'a'.repeat(64);
const sketch = createSketchProvider();
/** Sketch again, but drawing on a credential pool: it runs only with a usable credential. */
const pooled: Provider = { id: 'pooled', credentialPool: 'pooled', models: () => sketch.models(), run: sketch.run };
/** A model with fixed sizes and one image per task, as OpenAI's are. */
const fixed: Provider = {
  id: 'fixed',
  models: () => [
    {
      id: 'fixed-v1',
      kinds: ['txt2img'],
      maxWidth: 1792,
      maxHeight: 1792,
      maxSteps: 50,
      sizes: [
        { width: 1024, height: 1024 },
        { width: 1792, height: 1024 },
      ],
      maxN: 1,
    },
  ],
  run: sketch.run,
};
const registry = new ProviderRegistry([sketch, pooled, fixed]);

const ROUTES = {
  routes: {
    // The first target is "down": every attempt fails with a retryable (provider-side) error.
    steady: {
      description: 'falls through a broken first target',
      targets: [
        { provider: 'sketch', model: 'sketch-v1', options: { fail: 'retryable' }, defaults: { steps: 3 } },
        { provider: 'sketch', model: 'sketch-v1', defaults: { steps: 4, width: 96, height: 64 } },
      ],
    },
    // The first target refuses the request itself: that must not fall through.
    refusing: {
      targets: [
        { provider: 'sketch', model: 'sketch-v1', options: { fail: 'permanent' } },
        { provider: 'sketch', model: 'sketch-v1' },
      ],
    },
    // The first target's pool has no usable credential; after the wait the task moves on.
    stranded: {
      fallback_after_seconds: 1,
      targets: [
        { provider: 'pooled', model: 'sketch-v1' },
        { provider: 'sketch', model: 'sketch-v1' },
      ],
    },
  },
};

let easel: TestEasel;
let routesFile: string;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'easel-routes-'));
  routesFile = path.join(dir, 'routes.yaml');
  // JSON is YAML too; the YAML form is tested in the unit test of the parser.
  await writeFile(routesFile, JSON.stringify(ROUTES));
  easel = await startTestEasel(await createTestDatabase(), {
    registry,
    env: {
      EASEL_ROUTES_FILE: routesFile,
      EASEL_MAX_ATTEMPTS: '2',
      EASEL_SECRET_KEY: KEY,
      EASEL_RESCUE_INTERVAL_MS: '200',
    },
  });
});
afterAll(async () => {
  await easel?.stop();
});

describe('named routes', () => {
  it('lists the routes at GET /v1/routes', async () => {
    const { status, body } = await api<{ data: Array<{ name: string; targets: unknown[] }> }>(
      easel.url,
      'GET',
      '/v1/routes',
    );
    expect(status).toBe(200);
    expect(body.data.map((route) => route.name)).toEqual(['steady', 'refusing', 'stranded']);
    expect(body.data[0]!.targets).toHaveLength(2);
  });

  it('falls through to the second target when the first keeps failing, and records which produced the images', async () => {
    const { status, body } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'a kite', model: 'steady', seed: 7 });
    expect(status).toBe(202);
    expect(body.route).toMatchObject({ name: 'steady', target: 0, fallbacks: [] });
    expect(body.params.steps).toBe(3);
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(done.route).toMatchObject({ name: 'steady', target: 1 });
    expect(done.route!.fallbacks).toEqual([
      { provider: 'sketch', model: 'sketch-v1', error: expect.objectContaining({ code: 'PROVIDER_UNAVAILABLE' }) },
    ]);
    // The second target's own defaults apply; the seed the task showed is kept.
    expect(done.params).toMatchObject({ steps: 4, width: 96, height: 64, seed: 7 });
    expect(done.provider_options).toEqual({});
    expect(done.images).toHaveLength(1);
    expect(done.images[0]).toMatchObject({ width: 96, height: 64 });
  });

  it('does not fall through on a refusal of the request itself', async () => {
    const { body } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'a kite', model: 'refusing' });
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed']);
    expect(done.status).toBe('failed');
    expect(done.error?.code).toBe('PROVIDER_REJECTED');
    expect(done.route).toMatchObject({ target: 0, fallbacks: [] });
  });

  it('moves a task on when its target has had no usable credential for the route’s wait', async () => {
    const { body } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'a kite', model: 'stranded' });
    expect(body.provider).toBe('pooled');
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed'], 20_000);
    expect(done.status).toBe('succeeded');
    expect(done.provider).toBe('sketch');
    expect(done.route!.fallbacks).toEqual([
      { provider: 'pooled', model: 'sketch-v1', error: expect.objectContaining({ code: 'NO_USABLE_CREDENTIAL' }) },
    ]);
  });

  it('keeps a task on its target while a credential can serve it', async () => {
    await insertCredential(easel.pool, new SecretBox(Buffer.from(KEY, 'hex')), {
      provider: 'pooled',
      label: 'only',
      secret: 'pooled-secret-0001',
    });
    const { body } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'a kite', model: 'stranded' });
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed'], 20_000);
    expect(done.status).toBe('succeeded');
    expect(done.provider).toBe('pooled');
    expect(done.route).toMatchObject({ target: 0, fallbacks: [] });
  });

  it('refuses provider_options sent to a route, and unknown or ambiguous models, writing nothing', async () => {
    const before = await api<{ data: unknown[] }>(easel.url, 'GET', '/v1/tasks?limit=100');
    const options = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'x',
      model: 'steady',
      provider_options: { delay_ms: 1 },
    });
    expect(options.status).toBe(400);
    expect(options.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'provider_options' }] });
    const unknown = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'x', model: 'no-such-route' });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ code: 'UNKNOWN_MODEL' });
    // sketch-v1 is served by both sketch and pooled.
    const ambiguous = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'x', model: 'sketch-v1' });
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.body).toMatchObject({
      code: 'AMBIGUOUS_MODEL',
      providers: ['sketch', 'pooled'],
      errors: [{ field: 'model' }],
    });
    const after = await api<{ data: unknown[] }>(easel.url, 'GET', '/v1/tasks?limit=100');
    expect(after.body.data).toHaveLength(before.body.data.length);
  });

  it('refuses a request no target can serve, naming the first target’s reason', async () => {
    const { status, body } = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'x',
      model: 'steady',
      width: 4096,
      height: 4096,
    });
    expect(status).toBe(400);
    expect(body).toMatchObject({ code: 'UNSUPPORTED_SIZE', errors: [{ field: 'width' }, { field: 'height' }] });
  });
});

describe('model limits at submit', () => {
  it('runs a model with fixed sizes at its first size by default, and takes any listed size', async () => {
    const bare = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'x', model: 'fixed-v1' });
    expect(bare.status).toBe(202);
    expect(bare.body.params).toMatchObject({ width: 1024, height: 1024 });
    const wide = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'x',
      model: 'fixed-v1',
      width: 1792,
      height: 1024,
    });
    expect(wide.status).toBe(202);
  });

  it('refuses a size the model does not make, and more images than it makes, naming what it takes', async () => {
    const size = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'x', model: 'fixed-v1', width: 512, height: 512 });
    expect(size.status).toBe(400);
    expect(size.body).toMatchObject({
      code: 'UNSUPPORTED_SIZE',
      sizes: [
        { width: 1024, height: 1024 },
        { width: 1792, height: 1024 },
      ],
    });
    const n = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'x', model: 'fixed-v1', n: 2 });
    expect(n.status).toBe(400);
    expect(n.body).toMatchObject({ code: 'UNSUPPORTED_N', max_n: 1, errors: [{ field: 'n', pointer: '/n' }] });
  });
});

describe('routes file checks at start', () => {
  const service = (routes: unknown) => {
    const config = loadConfig({ DATABASE_URL: 'postgres://unused/db' });
    return () =>
      new TaskService({} as never, registry, { ...config, routes: routes as typeof config.routes }, NO_HINTS);
  };

  it('refuses a target whose provider, model or options do not exist here', () => {
    const target = (overrides: object) => [
      {
        name: 'r',
        description: null,
        fallbackAfterMs: 0,
        targets: [{ provider: 'sketch', model: 'sketch-v1', defaults: {}, options: {}, ...overrides }],
      },
    ];
    expect(service(target({ provider: 'nope' }))).toThrow(/no provider named nope/);
    expect(service(target({ model: 'nope' }))).toThrow(/sketch has no model nope/);
    expect(service(target({ options: { colour: 'red' } }))).toThrow(/options do not suit the model/);
  });

  it('refuses a route named like a model', () => {
    expect(
      service([
        {
          name: 'sketch-v1',
          description: null,
          fallbackAfterMs: 0,
          targets: [{ provider: 'sketch', model: 'sketch-v1', defaults: {}, options: {} }],
        },
      ]),
    ).toThrow(/also a model id/);
  });
});
