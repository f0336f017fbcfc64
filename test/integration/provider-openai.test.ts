import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../../src/providers/errors.js';
import { readOpenAIConfig } from '../../src/providers/openai/config.js';
import { createOpenAIProvider } from '../../src/providers/openai/index.js';
import type { Provider, TaskInput } from '../../src/providers/types.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus } from '../helpers/easel.js';
import { dataUrl, solidPng } from '../helpers/images.js';
import { createRunContext, taskInput, rejectionOf } from '../helpers/run-context.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';

const KEY = 'sk-test-openai-key';
const credential = { id: 'cred-1', label: 'test key', secret: KEY };

let fake: FakeOpenAI;
let provider: Provider;

beforeAll(async () => {
  fake = await startFakeOpenAI([KEY]);
  provider = createOpenAIProvider(readOpenAIConfig({ OPENAI_BASE_URL: fake.baseUrl }));
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.reset();
});

const gptTask = (overrides: Partial<TaskInput> = {}) =>
  taskInput({ model: 'gpt-image-1', width: 1024, height: 1024, steps: 1, ...overrides });

async function run(input: TaskInput, options: { signal?: AbortSignal; secret?: string } = {}) {
  const { ctx, record } = createRunContext({
    credential: { ...credential, secret: options.secret ?? KEY },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const images = await provider.run(input, ctx);
  return { images, record };
}

const failure = (input: TaskInput, options: { secret?: string } = {}): Promise<Error> =>
  rejectionOf(run(input, options));

const lastRequest = () => fake.requests.at(-1)!;

describe('openai: models', () => {
  it('lists each family with its kinds, sizes and options; the configured default first', () => {
    const models = createOpenAIProvider(readOpenAIConfig({ OPENAI_DEFAULT_MODEL: 'dall-e-3' })).models();
    expect(models[0]!.id).toBe('dall-e-3');
    expect(models[0]!.kinds).toEqual(['txt2img']);
    const byId = Object.fromEntries(models.map((model) => [model.id, model]));
    expect(byId['gpt-image-1']).toMatchObject({ kinds: ['txt2img', 'img2img'], maxWidth: 1536, maxHeight: 1536 });
    expect(byId['dall-e-2']).toMatchObject({ kinds: ['txt2img', 'img2img'], maxWidth: 1024 });
    expect(Object.keys(byId['dall-e-3']!.options!.properties)).toEqual(['quality', 'style', 'response_format']);
    expect(Object.keys(byId['gpt-image-1']!.options!.properties)).not.toContain('response_format');
  });

  it('refuses an unknown OPENAI_DEFAULT_MODEL at start', () => {
    expect(() => readOpenAIConfig({ OPENAI_DEFAULT_MODEL: 'dall-e-4' })).toThrow(/OPENAI_DEFAULT_MODEL/);
  });
});

describe('openai: generations', () => {
  it('sends gpt-image-1 its own fields (no response_format) and decodes the base64 images', async () => {
    const { images, record } = await run(gptTask({ width: 1024, height: 1536, n: 2, options: { quality: 'low' } }));
    expect(images).toHaveLength(2);
    for (const image of images) {
      expect(image).toMatchObject({ contentType: 'image/png', width: 1024, height: 1536 });
      expect(image.data.subarray(0, 4).toString('hex')).toBe('89504e47');
    }
    expect(images.map((image) => image.seed)).toEqual([42, 43]);
    const seen = lastRequest();
    expect(seen.path).toBe('/v1/images/generations');
    expect(seen.authorization).toBe(`Bearer ${KEY}`);
    expect(seen.fields).toEqual({
      model: 'gpt-image-1',
      prompt: 'a lighthouse at dusk',
      n: 2,
      size: '1024x1536',
      quality: 'low',
    });
    // Synchronous API: nothing to resume, so no providerRef; progress from start to the end.
    expect(record.providerRefs).toEqual([]);
    expect(record.progress[0]).toMatchObject({ stage: 'generating', pct: 0 });
    expect(record.progress.at(-1)!.pct).toBe(100);
  });

  it('keeps output_format webp as image/webp', async () => {
    const { images } = await run(gptTask({ options: { output_format: 'webp', background: 'opaque' } }));
    expect(images[0]).toMatchObject({ contentType: 'image/webp', width: 1024, height: 1024 });
  });

  it('asks dall-e-3 for b64_json by default, and downloads the url when the task asks for one', async () => {
    const b64 = await run(taskInput({ model: 'dall-e-3', width: 1792, height: 1024, options: { style: 'natural' } }));
    expect(b64.images[0]).toMatchObject({ contentType: 'image/png', width: 1792, height: 1024 });
    expect(lastRequest().fields).toMatchObject({ response_format: 'b64_json', style: 'natural', size: '1792x1024' });

    const downloadsBefore = fake.downloads;
    const url = await run(
      taskInput({ model: 'dall-e-3', width: 1024, height: 1792, options: { response_format: 'url', quality: 'hd' } }),
    );
    expect(url.images[0]).toMatchObject({ contentType: 'image/png', width: 1024, height: 1792 });
    expect(lastRequest().fields).toMatchObject({ response_format: 'url', quality: 'hd' });
    expect(fake.downloads).toBe(downloadsBefore + 1);
  });

  it('sends OpenAI-Organization and OpenAI-Project when configured', async () => {
    const scoped = createOpenAIProvider(
      readOpenAIConfig({ OPENAI_BASE_URL: fake.baseUrl, OPENAI_ORG_ID: 'org-123', OPENAI_PROJECT: 'proj_456' }),
    );
    const { ctx } = createRunContext({ credential });
    await scoped.run(gptTask(), ctx);
    expect(lastRequest().headers).toMatchObject({ 'openai-organization': 'org-123', 'openai-project': 'proj_456' });
  });

  it('refuses a size the model does not make, naming the allowed ones, without calling OpenAI', async () => {
    const before = fake.requests.length;
    const error = await failure(gptTask({ width: 512, height: 512 }));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ code: 'UNSUPPORTED_SIZE' });
    expect(error.message).toContain('1024x1024, 1536x1024, 1024x1536');
    const n = await failure(taskInput({ model: 'dall-e-3', width: 1024, height: 1024, n: 2 }));
    expect(n).toMatchObject({ code: 'UNSUPPORTED_N' });
    expect(fake.requests.length).toBe(before);
  });

  it('the fake refuses what the real API refuses (response_format to gpt-image-1, n=2 to dall-e-3)', async () => {
    const post = (body: unknown) =>
      fetch(`${fake.baseUrl}/images/generations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const formatRefused = await post({ model: 'gpt-image-1', prompt: 'x', response_format: 'url' });
    expect(formatRefused.status).toBe(400);
    expect(await formatRefused.json()).toMatchObject({
      error: { param: 'response_format', code: 'unknown_parameter' },
    });
    const nRefused = await post({ model: 'dall-e-3', prompt: 'x', n: 2 });
    expect(nRefused.status).toBe(400);
    expect(nRefused.headers.get('x-request-id')).toMatch(/^req_/);
  });
});

describe('openai: edits (img2img)', () => {
  it('sends the input image as a PNG file part named image, with the prompt and model as fields', async () => {
    const input = await solidPng(1024, 1024, [200, 30, 30]);
    const { images } = await run(
      gptTask({
        kind: 'img2img',
        inputImage: { data: input, contentType: 'image/png', width: 1024, height: 1024 },
        strength: 0.6,
        options: { input_fidelity: 'high' },
      }),
    );
    expect(images[0]).toMatchObject({ contentType: 'image/png', width: 1024, height: 1024 });
    const seen = lastRequest();
    expect(seen.path).toBe('/v1/images/edits');
    expect(seen.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(seen.fields).toEqual({
      model: 'gpt-image-1',
      prompt: 'a lighthouse at dusk',
      n: 1,
      size: '1024x1024',
      input_fidelity: 'high',
    });
    expect(Object.keys(seen.files)).toEqual(['image']);
    expect(seen.files.image).toMatchObject({ contentType: 'image/png', filename: 'input.png' });
    expect(seen.files.image!.bytes.equals(input)).toBe(true);
  });

  it('dall-e-2 edits a square PNG whose transparent pixels are the mask, and reads its url answer', async () => {
    const transparent = await sharp({
      create: { width: 512, height: 512, channels: 4, background: { r: 10, g: 200, b: 10, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const edit = (data: Buffer) =>
      taskInput({
        model: 'dall-e-2',
        kind: 'img2img',
        width: 512,
        height: 512,
        inputImage: { data, contentType: 'image/png', width: 512, height: 512 },
        options: { response_format: 'url' },
      });
    const { images } = await run(edit(transparent));
    expect(images[0]).toMatchObject({ width: 512, height: 512 });
    expect(lastRequest().files.image!.bytes.equals(transparent)).toBe(true);
    // An opaque input has no area to repaint: OpenAI refuses it, and so the task fails.
    const opaque = await failure(edit(await solidPng(512, 512, [10, 200, 10])));
    expect(opaque).toMatchObject({ code: 'PROVIDER_REJECTED', errorClass: 'permanent' });
    expect(opaque.message).toContain('transparency');
  });

  it('refuses options of the other endpoint before calling OpenAI', async () => {
    const input = await solidPng(1024, 1024, [1, 2, 3]);
    const error = await failure(
      gptTask({
        kind: 'img2img',
        inputImage: { data: input, contentType: 'image/png', width: 1024, height: 1024 },
        options: { moderation: 'low' },
      }),
    );
    expect(error).toMatchObject({ code: 'INVALID_PROVIDER_OPTIONS' });
  });
});

describe('openai: errors', () => {
  it('401 → CredentialError, with OpenAI’s masked message and never the key', async () => {
    const error = await failure(gptTask(), { secret: 'sk-wrong-key-0000000000abcd' });
    expect(error).toBeInstanceOf(CredentialError);
    expect(error.message).toContain('invalid_api_key');
    expect(error.message).not.toContain('sk-wrong-key-0000000000abcd');
  });

  it('429 insufficient_quota → QuotaExceededError; a plain 429 → RateLimitedError', async () => {
    fake.failNext({
      status: 429,
      type: 'insufficient_quota',
      code: 'insufficient_quota',
      message: 'You exceeded your current quota, please check your plan and billing details.',
    });
    const quota = await failure(gptTask());
    expect(quota).toBeInstanceOf(QuotaExceededError);
    expect(quota.message).toContain('You exceeded your current quota');

    fake.failNext({ status: 429, code: 'rate_limit_exceeded', message: 'Rate limit reached for images per minute.' });
    const limited = await failure(gptTask());
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect(limited).not.toBeInstanceOf(QuotaExceededError);
  });

  it('400 billing_hard_limit_reached → QuotaExceededError', async () => {
    fake.failNext({ status: 400, code: 'billing_hard_limit_reached', message: 'Billing hard limit has been reached' });
    expect(await failure(gptTask())).toBeInstanceOf(QuotaExceededError);
  });

  it('honours retry-after-ms, then Retry-After in seconds or as an HTTP date', async () => {
    fake.failNext({ status: 429, headers: { 'retry-after-ms': '1500', 'retry-after': '9' } });
    expect(await failure(gptTask())).toMatchObject({ retryAfterMs: 1500 });
    fake.failNext({ status: 429, headers: { 'retry-after': '20' } });
    expect(await failure(gptTask())).toMatchObject({ retryAfterMs: 20_000 });
    fake.failNext({ status: 429, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } });
    const dated = (await failure(gptTask())) as RateLimitedError;
    expect(dated.retryAfterMs).toBeGreaterThan(50_000);
    expect(dated.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('content policy refusals (content_policy_violation, moderation_blocked) → PermanentError CONTENT_POLICY', async () => {
    fake.failNext({
      status: 400,
      code: 'content_policy_violation',
      message: 'Your request was rejected as a result of our safety system.',
    });
    const dalle = await failure(taskInput({ model: 'dall-e-3', width: 1024, height: 1024 }));
    expect(dalle).toBeInstanceOf(PermanentError);
    expect(dalle).toMatchObject({ code: 'CONTENT_POLICY' });
    expect(dalle.message).toContain('rejected as a result of our safety system');

    fake.failNext({
      status: 400,
      type: 'image_generation_user_error',
      code: 'moderation_blocked',
      message: 'Your request was rejected by the safety system.',
    });
    expect(await failure(gptTask())).toMatchObject({ code: 'CONTENT_POLICY' });
  });

  it('another 400 → PermanentError PROVIDER_REJECTED; 403 → PermanentError, the key kept', async () => {
    fake.failNext({ status: 400, code: 'invalid_value', message: "Invalid value: 'x'." });
    expect(await failure(gptTask())).toMatchObject({ code: 'PROVIDER_REJECTED', errorClass: 'permanent' });
    fake.failNext({
      status: 403,
      message: 'Your organization must be verified to use the model `gpt-image-1`.',
    });
    expect(await failure(gptTask())).toMatchObject({ code: 'PROVIDER_FORBIDDEN', errorClass: 'permanent' });
  });

  it('5xx, 408 and 409 → RetryableError', async () => {
    for (const status of [500, 503, 408, 409]) {
      fake.failNext({ status, message: 'The server had an error while processing your request.' });
      const error = await failure(gptTask());
      expect(error).toBeInstanceOf(RetryableError);
      expect(error).toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    }
    fake.failNext({ status: 502, rawBody: '<html>502 Bad Gateway</html>' });
    expect(await failure(gptTask())).toBeInstanceOf(RetryableError);
  });

  it('x-should-retry overrides the status for other failures, as OpenAI’s clients do', async () => {
    fake.failNext({ status: 500, headers: { 'x-should-retry': 'false' } });
    expect(await failure(gptTask())).toMatchObject({ code: 'PROVIDER_REJECTED', errorClass: 'permanent' });
    fake.failNext({ status: 400, code: 'invalid_value', headers: { 'x-should-retry': 'true' } });
    expect(await failure(gptTask())).toBeInstanceOf(RetryableError);
  });

  it('a malformed answer (not JSON, no data, not an image, an empty entry) → RetryableError', async () => {
    for (const kind of ['not-json', 'no-data', 'not-an-image', 'empty-entry'] as const) {
      fake.malformNext(kind);
      const error = await failure(gptTask());
      expect(error).toBeInstanceOf(RetryableError);
      expect(error).toMatchObject({ code: 'PROVIDER_BAD_OUTPUT' });
    }
  });

  it('an expired result url → RetryableError PROVIDER_OUTPUT_GONE', async () => {
    // A url answer whose file is gone: point the provider at the fake but the download at a 404.
    const { ctx } = createRunContext({ credential });
    const realFetch = ctx.fetch;
    ctx.fetch = (url, init) => realFetch(String(url).includes('/files/') ? `${fake.url}/files/missing.png` : url, init);
    const error = await provider
      .run(taskInput({ model: 'dall-e-2', width: 256, height: 256, options: { response_format: 'url' } }), ctx)
      .catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'PROVIDER_OUTPUT_GONE' });
  });
});

describe('openai: abort', () => {
  it('an answer slower than the attempt: the request is aborted promptly with the signal’s reason', async () => {
    fake.slow(30_000);
    const controller = new AbortController();
    const reason = new Error('attempt timed out');
    const abortedBefore = fake.aborted;
    const pending = run(gptTask(), { signal: controller.signal });
    await waitUntil(() => fake.requests.length > 0 && fake.requests.at(-1)!.path.endsWith('/generations'));
    setTimeout(() => controller.abort(reason), 100);
    await expect(pending).rejects.toBe(reason);
    await waitUntil(() => fake.aborted > abortedBefore);
  });

  it('a run whose signal is already aborted (cancelled while queued) sends nothing', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    controller.abort(reason);
    const before = fake.requests.length;
    await expect(run(gptTask(), { signal: controller.signal })).rejects.toBe(reason);
    expect(fake.requests.length).toBe(before);
  });

  it('a retried attempt with a providerRef creates a new request: OpenAI has nothing to resume', async () => {
    const before = fake.requests.length;
    const { images, record } = await run(gptTask({ attempt: 2, providerRef: 'anything' }));
    expect(images).toHaveLength(1);
    expect(fake.requests.length).toBe(before + 1);
    expect(record.providerRefs).toEqual([]);
  });
});

describe('openai: through Easel', () => {
  it('runs a txt2img and an img2img task with OPENAI_BASE_URL and OPENAI_API_KEY, images in Easel storage', async () => {
    const easel = await startTestEasel(await createTestDatabase(), {
      env: {
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: KEY,
        EASEL_SECRET_KEY: randomBytes(32).toString('hex'),
      },
    });
    try {
      const foxTask = {
        provider: 'openai',
        model: 'gpt-image-1',
        prompt: 'a red fox',
        width: 1536,
        height: 1024,
        provider_options: { quality: 'low' },
      };
      const submitted = await api(easel.url, 'POST', '/v1/tasks', foxTask);
      expect(submitted.status).toBe(202);
      const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
      expect(done.status).toBe('succeeded');
      expect(done.images[0]).toMatchObject({ content_type: 'image/png', width: 1536, height: 1024 });
      const response = await fetch(done.images[0]!.url);
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 1536, height: 1024 });
      expect(lastRequest().authorization).toBe(`Bearer ${KEY}`);

      const edit = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'openai',
        model: 'gpt-image-1',
        kind: 'img2img',
        image: dataUrl(await solidPng(1024, 1024, [0, 0, 255])),
        prompt: 'the same, in autumn',
        width: 1024,
        height: 1024,
      });
      expect(edit.status).toBe(202);
      const edited = await waitForStatus(easel.url, edit.body.id, ['succeeded', 'failed']);
      expect(edited.status).toBe('succeeded');
      expect(lastRequest().path).toBe('/v1/images/edits');
      expect(lastRequest().files.image!.contentType).toBe('image/png');

      const refused = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'openai',
        model: 'dall-e-3',
        prompt: 'x',
        width: 1024,
        height: 1024,
        provider_options: { background: 'transparent' },
      });
      expect(refused.status).toBe(400);

      // A content-policy refusal fails the task at once, with OpenAI's words.
      fake.failNext({
        status: 400,
        code: 'moderation_blocked',
        message: 'Your request was rejected by the safety system.',
      });
      const blocked = await api(easel.url, 'POST', '/v1/tasks', { ...foxTask, prompt: 'something refused' });
      const failed = await waitForStatus(easel.url, blocked.body.id, ['succeeded', 'failed']);
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatchObject({ code: 'CONTENT_POLICY' });
      expect(failed.error!.message).toContain('rejected by the safety system');

      // Quota used up: the key cools down and the task waits in the queue instead of failing.
      fake.failNext({ status: 429, type: 'insufficient_quota', code: 'insufficient_quota', message: 'quota' });
      const waiting = await api(easel.url, 'POST', '/v1/tasks', foxTask);
      const credentials = async () =>
        (await api<{ data: Array<Record<string, unknown>> }>(easel.url, 'GET', '/v1/admin/credentials?provider=openai'))
          .body.data;
      await waitUntil(async () => (await credentials())[0]!.state === 'cooling_down', 10_000);
      expect((await credentials())[0]).toMatchObject({ last_error: { code: 'PROVIDER_QUOTA_EXCEEDED' } });
      expect((await api(easel.url, 'GET', `/v1/tasks/${waiting.body.id}`)).body.status).toBe('queued');
    } finally {
      await easel.stop();
    }
  });
});

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
