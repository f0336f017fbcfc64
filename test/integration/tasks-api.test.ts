import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase } from '../helpers/database.js';

let easel: TestEasel;

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase());
});
afterAll(async () => {
  await easel?.stop();
});

const taskCount = async () => Number((await easel.pool.query('SELECT count(*) FROM tasks')).rows[0].count);

describe('a task on sketch', () => {
  it('runs, and its PNG is fetchable at a stable URL', async () => {
    const submitted = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'a lighthouse at dusk',
      width: 128,
      height: 96,
      seed: 7,
    });
    expect(submitted.status).toBe(202);
    expect(submitted.headers.get('location')).toBe(`/v1/tasks/${submitted.body.id}`);
    expect(submitted.body).toMatchObject({ status: 'queued', provider: 'sketch', model: 'sketch-v1' });
    expect(typeof submitted.body.queue_position).toBe('number');

    const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded']);
    expect(done.attempt).toBe(1);
    expect(done.progress).toBe(100);
    expect(done.predict_time).toBeGreaterThanOrEqual(0);
    expect(done.images).toHaveLength(1);
    const image = done.images[0]!;
    expect(image).toMatchObject({ index: 0, content_type: 'image/png', width: 128, height: 96, seed: 7 });

    const response = await fetch(image.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(bytes.length).toBe(image.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(image.sha256);
    const cached = await fetch(image.url, { headers: { 'if-none-match': response.headers.get('etag')! } });
    expect(cached.status).toBe(304);
  });

  it('gives identical bytes for the same seed and parameters, different bytes for another seed', async () => {
    const body = { prompt: 'same every time', width: 64, height: 64, seed: 42, steps: 4 };
    const ids = await Promise.all(
      [body, body, { ...body, seed: 43 }].map(async (b) => (await api(easel.url, 'POST', '/v1/tasks', b)).body.id),
    );
    const hashes = await Promise.all(
      ids.map(async (id) => (await waitForStatus(easel.url, id, ['succeeded'])).images[0]!.sha256),
    );
    expect(hashes[0]).toBe(hashes[1]);
    expect(hashes[2]).not.toBe(hashes[0]);
  });

  it('makes n images with consecutive seeds', async () => {
    const { body } = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'three',
      n: 3,
      seed: 100,
      width: 64,
      height: 64,
    });
    const done = await waitForStatus(easel.url, body.id, ['succeeded']);
    expect(done.images.map((image) => image.seed)).toEqual([100, 101, 102]);
    expect(new Set(done.images.map((image) => image.sha256)).size).toBe(3);
  });

  it('answers with the finished task when Prefer: wait covers the run', async () => {
    const response = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'quick', width: 64, height: 64 },
      { prefer: 'wait=10' },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('preference-applied')).toBe('wait=10');
    expect(response.body.status).toBe('succeeded');
    expect(response.body.images).toHaveLength(1);
  });

  it('answers 202 when Prefer: wait runs out first', async () => {
    const response = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'slow', width: 64, height: 64, provider_options: { delay_ms: 3000 } },
      { prefer: 'wait=1' },
    );
    expect(response.status).toBe(202);
    expect(['queued', 'running']).toContain(response.body.status);
    await api(easel.url, 'POST', `/v1/tasks/${response.body.id}/cancel`);
  });
});

describe('listing', () => {
  it('pages newest first with a cursor and filters by status and provider', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        (
          await api(
            easel.url,
            'POST',
            '/v1/tasks',
            { prompt: `list ${i}`, width: 64, height: 64 },
            { prefer: 'wait=10' },
          )
        ).body.id,
      );
    }
    const first = await api<{ data: { id: string }[]; next_cursor: string }>(easel.url, 'GET', '/v1/tasks?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.data.map((task) => task.id)).toEqual([ids[4], ids[3]]);
    const second = await api<{ data: { id: string }[]; next_cursor: string }>(
      easel.url,
      'GET',
      `/v1/tasks?limit=2&cursor=${first.body.next_cursor}`,
    );
    expect(second.body.data.map((task) => task.id)).toEqual([ids[2], ids[1]]);

    const succeeded = await api<{ data: { status: string }[] }>(
      easel.url,
      'GET',
      '/v1/tasks?status=succeeded&provider=sketch&limit=100',
    );
    expect(succeeded.body.data.length).toBeGreaterThanOrEqual(5);
    expect(succeeded.body.data.every((task) => task.status === 'succeeded')).toBe(true);
    const none = await api<{ data: unknown[] }>(easel.url, 'GET', '/v1/tasks?provider=nobody');
    expect(none.body.data).toEqual([]);
  });

  it('rejects a bad limit, status or cursor', async () => {
    expect((await api(easel.url, 'GET', '/v1/tasks?limit=0')).status).toBe(400);
    expect((await api(easel.url, 'GET', '/v1/tasks?limit=500')).status).toBe(400);
    expect((await api(easel.url, 'GET', '/v1/tasks?status=sleeping')).status).toBe(400);
    expect((await api<{ code: string }>(easel.url, 'GET', '/v1/tasks?cursor=xyz')).body.code).toBe('INVALID_CURSOR');
  });
});

describe('bad input changes nothing', () => {
  const valid = { prompt: 'ok', width: 64, height: 64 };
  const cases: Array<[string, Record<string, unknown>, string, string]> = [
    ['missing prompt', { width: 64 }, 'prompt', 'REQUIRED'],
    ['empty prompt', { ...valid, prompt: '' }, 'prompt', 'TOO_SHORT'],
    ['blank prompt', { ...valid, prompt: '   ' }, 'prompt', 'BAD_FORMAT'],
    ['prompt too long', { ...valid, prompt: 'x'.repeat(4001) }, 'prompt', 'TOO_LONG'],
    ['negative prompt too long', { ...valid, negative_prompt: 'x'.repeat(4001) }, 'negative_prompt', 'TOO_LONG'],
    ['width not a multiple of 8', { ...valid, width: 100 }, 'width', 'NOT_MULTIPLE'],
    ['width too small', { ...valid, width: 32 }, 'width', 'TOO_SMALL'],
    ['height too large', { ...valid, height: 8192 }, 'height', 'TOO_LARGE'],
    ['width a string', { ...valid, width: '512' }, 'width', 'WRONG_TYPE'],
    ['steps zero', { ...valid, steps: 0 }, 'steps', 'TOO_SMALL'],
    ['steps too many', { ...valid, steps: 151 }, 'steps', 'TOO_LARGE'],
    ['guidance negative', { ...valid, guidance: -1 }, 'guidance', 'TOO_SMALL'],
    ['n zero', { ...valid, n: 0 }, 'n', 'TOO_SMALL'],
    ['n nine', { ...valid, n: 9 }, 'n', 'TOO_LARGE'],
    ['seed negative', { ...valid, seed: -1 }, 'seed', 'TOO_SMALL'],
    ['seed fractional', { ...valid, seed: 1.5 }, 'seed', 'WRONG_TYPE'],
    ['priority 11', { ...valid, priority: 11 }, 'priority', 'TOO_LARGE'],
    ['unknown field', { ...valid, colour: 'red' }, 'colour', 'UNKNOWN_FIELD'],
    ['img2img without input', { ...valid, kind: 'img2img' }, 'image', 'REQUIRED'],
    ['strength on txt2img', { ...valid, strength: 0.5 }, 'strength', 'NOT_ALLOWED'],
    ['kind unknown', { ...valid, kind: 'inpaint' }, 'kind', 'NOT_ALLOWED'],
  ];

  it.each(cases)('%s → 400 VALIDATION_FAILED with the rule code, no row', async (_name, body, field, rule) => {
    const before = await taskCount();
    const response = await api<{ code: string; errors: { field: string; code: string }[] }>(
      easel.url,
      'POST',
      '/v1/tasks',
      body,
    );
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.body.code).toBe('VALIDATION_FAILED');
    expect(response.body.errors).toContainEqual(expect.objectContaining({ field, code: rule }));
    expect(await taskCount()).toBe(before);
  });

  it.each([
    ['unknown provider', { ...valid, provider: 'nope' }, 400, 'UNKNOWN_PROVIDER'],
    ['unknown model', { ...valid, model: 'nope' }, 400, 'UNKNOWN_MODEL'],
    ['size beyond the model', { ...valid, width: 4096 }, 400, 'UNSUPPORTED_SIZE'],
  ])('%s → %i %s, no row', async (_name, body, status, code) => {
    const before = await taskCount();
    const response = await api<{ code: string }>(easel.url, 'POST', '/v1/tasks', body);
    expect(response.status).toBe(status);
    expect(response.body.code).toBe(code);
    expect(await taskCount()).toBe(before);
  });

  it('malformed JSON → 400 MALFORMED_JSON', async () => {
    const before = await taskCount();
    const response = await api<{ code: string }>(easel.url, 'POST', '/v1/tasks', '{"prompt": "oops"', {
      'content-type': 'application/json',
    });
    expect(response.status).toBe(400);
    expect(response.body.code).toBe('MALFORMED_JSON');
    expect(await taskCount()).toBe(before);
  });

  it('oversized body → 413 BODY_TOO_LARGE', async () => {
    const before = await taskCount();
    const response = await api<{ code: string }>(easel.url, 'POST', '/v1/tasks', {
      prompt: 'x',
      filler: 'y'.repeat(2 * 1024 * 1024),
    });
    expect(response.status).toBe(413);
    expect(response.body.code).toBe('BODY_TOO_LARGE');
    expect(await taskCount()).toBe(before);
  });

  it('unknown route → 404 ROUTE_NOT_FOUND; unknown task → 404 TASK_NOT_FOUND', async () => {
    const route = await api<{ code: string }>(easel.url, 'GET', '/v1/nothing-here');
    expect(route.status).toBe(404);
    expect(route.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(route.body.code).toBe('ROUTE_NOT_FOUND');
    const task = await api<{ code: string }>(easel.url, 'GET', '/v1/tasks/0190a0a0-0000-7000-8000-000000000000');
    expect(task.status).toBe(404);
    expect(task.body.code).toBe('TASK_NOT_FOUND');
  });
});

describe('Idempotency-Key', () => {
  it('returns the same task for the same key and body, and 409 for another body', async () => {
    const body = { prompt: 'once only', width: 64, height: 64, seed: 5 };
    const headers = { 'idempotency-key': `key-${Date.now()}` };
    const first = await api(easel.url, 'POST', '/v1/tasks', body, headers);
    const again = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { seed: 5, height: 64, width: 64, prompt: 'once only' },
      headers,
    );
    expect(first.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    const before = await taskCount();
    const conflict = await api<{ code: string }>(easel.url, 'POST', '/v1/tasks', { ...body, seed: 6 }, headers);
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await taskCount()).toBe(before);
  });

  it('makes one task from concurrent duplicates', async () => {
    const headers = { 'idempotency-key': `race-${Date.now()}` };
    const body = { prompt: 'raced', width: 64, height: 64, seed: 1 };
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => api(easel.url, 'POST', '/v1/tasks', body, headers)),
    );
    expect(new Set(responses.map((response) => response.body.id)).size).toBe(1);
    const { rows } = await easel.pool.query('SELECT count(*)::int AS n FROM tasks WHERE idempotency_key = $1', [
      headers['idempotency-key'],
    ]);
    expect(rows[0].n).toBe(1);
  });
});

describe('service endpoints', () => {
  it('serves health, readiness, OpenAPI 3.1, docs, providers and queue', async () => {
    expect((await api(easel.url, 'GET', '/healthz')).status).toBe(200);
    expect((await api(easel.url, 'GET', '/readyz')).body).toEqual({ status: 'ready' });
    const openapi = await api<{ openapi: string; paths: Record<string, unknown> }>(easel.url, 'GET', '/openapi.json');
    expect(openapi.body.openapi).toBe('3.1.0');
    expect(Object.keys(openapi.body.paths)).toEqual(
      expect.arrayContaining(['/v1/tasks', '/v1/tasks/{id}', '/v1/events']),
    );
    const docs = await fetch(`${easel.url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
    const providers = await api<{ data: { id: string; models: { id: string }[] }[] }>(
      easel.url,
      'GET',
      '/v1/providers',
    );
    expect(providers.body.data[0]).toMatchObject({
      id: 'sketch',
      models: [expect.objectContaining({ id: 'sketch-v1' })],
    });
    const queue = await api<{ providers: { provider: string }[]; workers: { live: number } }>(
      easel.url,
      'GET',
      '/v1/queue',
    );
    expect(queue.body.workers.live).toBe(1);
    expect(queue.body.providers.map((p) => p.provider)).toContain('sketch');
  });
});
