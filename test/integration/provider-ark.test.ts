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
import { readArkConfig } from '../../src/providers/ark/config.js';
import { createArkProvider } from '../../src/providers/ark/index.js';
import type { Provider, TaskInput } from '../../src/providers/types.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus } from '../helpers/easel.js';
import { dataUrl, solidPng } from '../helpers/images.js';
import { createRunContext, taskInput, rejectionOf } from '../helpers/run-context.js';
import { startFakeArk, type FakeArk } from '../fakes/ark.js';

const KEY = 'ark-test-key-0001';
const credential = { id: 'cred-1', label: 'test key', secret: KEY };

let fake: FakeArk;
let provider: Provider;

beforeAll(async () => {
  fake = await startFakeArk([KEY]);
  provider = createArkProvider(readArkConfig({ ARK_BASE_URL: fake.baseUrl }));
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.reset();
});

const seedream3 = (overrides: Partial<TaskInput> = {}) =>
  taskInput({ model: 'doubao-seedream-3.0-t2i', width: 1024, height: 1024, steps: 1, ...overrides });

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

const lastBody = () => fake.requests.at(-1)!.body;

describe('ark: config and models', () => {
  it('maps the names users know to dated model ids, overridable by ARK_MODEL_ENDPOINTS', () => {
    expect(readArkConfig({}).baseUrl).toBe('https://ark.cn-beijing.volces.com/api/v3');
    expect(readArkConfig({}).modelIds['doubao-seedream-3.0-t2i']).toBe('doubao-seedream-3-0-t2i-250415');
    const custom = readArkConfig({ ARK_MODEL_ENDPOINTS: 'doubao-seedream-4.0=ep-20250101-abcde' });
    expect(custom.modelIds['doubao-seedream-4.0']).toBe('ep-20250101-abcde');
    expect(() => readArkConfig({ ARK_MODEL_ENDPOINTS: 'seedream=ep-1' })).toThrow(/unknown model/);
    expect(() => readArkConfig({ ARK_MODEL_ENDPOINTS: 'doubao-seedream-4.0' })).toThrow(/ARK_MODEL_ENDPOINTS/);
  });

  it('lists each model with kinds and option schemas', () => {
    const byId = Object.fromEntries(provider.models().map((model) => [model.id, model]));
    expect(byId['doubao-seedream-3.0-t2i']).toMatchObject({ kinds: ['txt2img'], maxWidth: 2048, maxN: 1 });
    expect(byId['doubao-seedream-4.0']!.kinds).toEqual(['txt2img', 'img2img']);
    expect(Object.keys(byId['doubao-seedream-3.0-t2i']!.options!.properties)).toEqual([
      'guidance_scale',
      'response_format',
      'watermark',
    ]);
    expect(Object.keys(byId['doubao-seedream-4.0']!.options!.properties)).not.toContain('guidance_scale');
  });
});

describe('ark: generation', () => {
  it('sends Seedream 3.0 its fields with the Bearer key and decodes b64_json', async () => {
    const { images, record } = await run(
      seedream3({ width: 1280, height: 720, seed: 3_000_000_000, options: { guidance_scale: 3, watermark: false } }),
    );
    expect(images[0]).toMatchObject({
      contentType: 'image/jpeg',
      width: 1280,
      height: 720,
      seed: 3_000_000_000 % 2 ** 31,
    });
    expect(fake.requests.at(-1)!.authorization).toBe(`Bearer ${KEY}`);
    expect(lastBody()).toEqual({
      model: 'doubao-seedream-3-0-t2i-250415',
      prompt: 'a lighthouse at dusk',
      size: '1280x720',
      seed: 3_000_000_000 % 2 ** 31,
      guidance_scale: 3,
      response_format: 'b64_json',
      watermark: false,
    });
    expect(record.providerRefs).toEqual([]);
    expect(record.progress.at(-1)!.pct).toBe(100);
  });

  it('downloads the url when asked; Seedream 4.0 gets no seed and one image', async () => {
    const downloads = fake.downloads;
    const { images } = await run(
      taskInput({ model: 'doubao-seedream-4.0', width: 2048, height: 2048, options: { response_format: 'url' } }),
    );
    expect(images[0]).toMatchObject({ width: 2048, height: 2048 });
    expect(fake.downloads).toBe(downloads + 1);
    expect(lastBody()).toEqual({
      model: 'doubao-seedream-4-0-250828',
      prompt: 'a lighthouse at dusk',
      size: '2048x2048',
      sequential_image_generation: 'disabled',
      response_format: 'url',
    });
  });

  it('img2img: SeedEdit gets the input as a data URL and size adaptive', async () => {
    const png = await solidPng(640, 640, [200, 10, 10]);
    const { images } = await run(
      taskInput({
        model: 'doubao-seededit-3.0-i2i',
        kind: 'img2img',
        width: 640,
        height: 640,
        inputImage: { data: png, contentType: 'image/png', width: 640, height: 640 },
      }),
    );
    expect(images).toHaveLength(1);
    expect(lastBody()).toMatchObject({ model: 'doubao-seededit-3-0-i2i-250628', size: 'adaptive' });
    expect(lastBody().image).toBe(dataUrl(png));
  });

  it('refuses what the model does not take before calling Ark', async () => {
    const before = fake.requests.length;
    expect(await failure(seedream3({ width: 256, height: 256 }))).toMatchObject({ code: 'UNSUPPORTED_SIZE' });
    expect(await failure(taskInput({ model: 'doubao-seedream-4.0', width: 512, height: 512 }))).toMatchObject({
      code: 'UNSUPPORTED_SIZE',
    });
    expect(await failure(seedream3({ options: { guidance_scale: 11 } }))).toMatchObject({
      code: 'INVALID_PROVIDER_OPTIONS',
    });
    expect(await failure(seedream3({ kind: 'img2img' }))).toMatchObject({ code: 'UNSUPPORTED_KIND' });
    expect(fake.requests.length).toBe(before);
  });
});

describe('ark: failures', () => {
  it('maps Ark error codes: content review, auth, money, rate limit, setup, 5xx', async () => {
    fake.failNext({
      status: 400,
      code: 'InputTextSensitiveContentDetected',
      message: 'The request failed because the input text may contain sensitive information.',
    });
    const refused = await failure(seedream3());
    expect(refused).toBeInstanceOf(PermanentError);
    expect(refused).toMatchObject({ code: 'CONTENT_POLICY' });
    expect(refused.message).toContain("refused by Ark's content review");

    fake.failNext({ status: 400, code: 'OutputImageSensitiveContentDetected', message: 'output image' });
    expect(await failure(seedream3())).toMatchObject({ code: 'PROVIDER_OUTPUT_REFUSED' });

    const auth = await failure(seedream3(), { secret: 'wrong-key' });
    expect(auth).toBeInstanceOf(CredentialError);
    expect(auth.message).toContain('AuthenticationError');

    fake.failNext({ status: 403, code: 'AccountOverdueError', message: 'overdue balance' });
    expect(await failure(seedream3())).toBeInstanceOf(QuotaExceededError);

    fake.failNext({ status: 429, code: 'RateLimitExceeded.EndpointRPMExceeded', headers: { 'retry-after': '7' } });
    const limited = await failure(seedream3());
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).retryAfterMs).toBe(7000);

    fake.failNext({ status: 404, code: 'ModelNotOpen', message: 'activate the model in the Ark console' });
    expect(await failure(seedream3())).toMatchObject({ code: 'PROVIDER_REJECTED' });

    fake.failNext({ status: 403, code: 'AccessDenied', message: 'no access' });
    expect(await failure(seedream3())).toMatchObject({ code: 'PROVIDER_FORBIDDEN' });

    fake.failNext({ status: 500, code: 'InternalServiceError', message: 'oops' });
    expect(await failure(seedream3())).toBeInstanceOf(RetryableError);

    // Ark's own verdict outranks the status, as its SDK reads it.
    fake.failNext({ status: 409, code: 'Conflict', headers: { 'x-should-retry': 'false' } });
    expect(await failure(seedream3())).toBeInstanceOf(PermanentError);
    fake.failNext({ status: 400, code: 'InvalidEndpoint.ClosedEndpoint', message: 'temporarily unavailable' });
    expect(await failure(seedream3())).toBeInstanceOf(RetryableError);
  });

  it('the fake’s own parameter refusal comes back permanent with Ark’s words', async () => {
    const provider2 = createArkProvider(
      readArkConfig({ ARK_BASE_URL: fake.baseUrl, ARK_MODEL_ENDPOINTS: 'doubao-seedream-3.0-t2i=doubao-unknown-1' }),
    );
    const { ctx } = createRunContext({ credential });
    const error = await provider2.run(seedream3(), ctx).then(
      () => undefined,
      (thrown: unknown) => thrown as Error,
    );
    expect(error).toMatchObject({ code: 'PROVIDER_REJECTED' });
    expect(error!.message).toContain('InvalidEndpointOrModel.NotFound');
  });

  it('malformed answers are retryable PROVIDER_BAD_OUTPUT', async () => {
    for (const kind of ['not-json', 'no-data', 'not-an-image', 'empty-entry'] as const) {
      fake.malformNext(kind);
      expect(await failure(seedream3())).toMatchObject({ code: 'PROVIDER_BAD_OUTPUT' });
    }
  });

  it('a slow answer is aborted promptly with the signal’s reason', async () => {
    fake.slow(30_000);
    const controller = new AbortController();
    const reason = new Error('canceled');
    const aborted = fake.aborted;
    const pending = run(seedream3(), { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 200);
    await expect(pending).rejects.toBe(reason);
    const deadline = Date.now() + 5000;
    while (fake.aborted === aborted && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fake.aborted).toBe(aborted + 1);
  });
});

describe('ark: through Easel', () => {
  it('runs a task with ARK_API_KEY from the pool; images in Easel storage', async () => {
    const easel = await startTestEasel(await createTestDatabase(), {
      env: { ARK_BASE_URL: fake.baseUrl, ARK_API_KEY: KEY, EASEL_SECRET_KEY: randomBytes(32).toString('hex') },
    });
    try {
      const submitted = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'ark',
        model: 'doubao-seedream-3.0-t2i',
        prompt: 'a red fox',
        width: 1024,
        height: 1024,
        provider_options: { watermark: false },
      });
      expect(submitted.status).toBe(202);
      const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
      expect(done.status).toBe('succeeded');
      const bytes = Buffer.from(await (await fetch(done.images[0]!.url)).arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'jpeg', width: 1024, height: 1024 });
      expect(fake.requests.at(-1)!.authorization).toBe(`Bearer ${KEY}`);
    } finally {
      await easel.stop();
    }
  });
});
