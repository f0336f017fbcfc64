import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readHuggingFaceConfig } from '../../src/providers/huggingface/config.js';
import { createHuggingFaceProvider } from '../../src/providers/huggingface/index.js';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../../src/providers/errors.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus } from '../helpers/easel.js';
import { createRunContext, taskInput } from '../helpers/run-context.js';
import { startHuggingFaceFake, type HuggingFaceFake } from '../fakes/huggingface.js';

const TOKEN = 'hf_test_token_a';
const credential = { id: 'c1', label: 'test', secret: TOKEN };
const MODEL = 'black-forest-labs/FLUX.1-schnell';
let fake: HuggingFaceFake;

beforeAll(async () => {
  fake = await startHuggingFaceFake({ tokens: [TOKEN, 'hf_test_token_b'], models: [MODEL] });
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.slow(0);
});

const provider = (env: Record<string, string> = {}) =>
  createHuggingFaceProvider(readHuggingFaceConfig({ HF_BASE_URL: fake.url, ...env }));
const input = (overrides = {}) => taskInput({ model: MODEL, width: 64, height: 48, ...overrides });
const run = (overrides = {}, options: Parameters<typeof createRunContext>[0] = {}) => {
  const { ctx, record } = createRunContext({ credential, ...options });
  return { result: provider().run(input(overrides), ctx), record };
};

describe('huggingface adapter', () => {
  it('sends the text-to-image body and decodes the image bytes', async () => {
    const before = fake.requests.length;
    const images = await run({ negativePrompt: 'blurry', steps: 4, guidance: 3.5, seed: 7 }).result;
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ contentType: 'image/png', width: 64, height: 48, seed: 7 });
    expect((await sharp(images[0]!.data).metadata()).format).toBe('png');
    const sent = fake.requests[before]!;
    expect(sent.token).toBe(TOKEN);
    expect(sent.model).toBe(MODEL);
    expect(sent.body).toEqual({
      inputs: 'a lighthouse at dusk',
      parameters: {
        negative_prompt: 'blurry',
        width: 64,
        height: 48,
        num_inference_steps: 4,
        guidance_scale: 3.5,
        seed: 7,
      },
    });
  });

  it('makes n images with one call each and consecutive seeds', async () => {
    const before = fake.requests.length;
    const images = await run({ n: 3, seed: 10 }).result;
    expect(images.map((image) => image.seed)).toEqual([10, 11, 12]);
    expect(fake.requests.slice(before).map((request) => request.body?.parameters?.seed)).toEqual([10, 11, 12]);
  });

  it('waits out a "model is loading" 503 and reports it as progress', async () => {
    fake.loading(2, 0.01);
    const before = fake.requests.length;
    const { result, record } = run();
    const images = await result;
    expect(images).toHaveLength(1);
    expect(fake.requests.length - before).toBe(3);
    expect(record.progress.filter((entry) => entry.stage === 'model loading')).toHaveLength(2);
  });

  it('gives up after HF_LOADING_RETRIES loading answers, retryably', async () => {
    fake.loading(2, 0.01);
    const { ctx } = createRunContext({ credential });
    const error = await provider({ HF_LOADING_RETRIES: '1' })
      .run(input(), ctx)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe('PROVIDER_MODEL_LOADING');
  });

  it('401 disables the credential, with the provider words and never the token', async () => {
    const { ctx } = createRunContext({ credential: { ...credential, secret: 'hf_wrong' } });
    const error = await provider()
      .run(input(), ctx)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toContain('Invalid credentials');
    expect((error as Error).message).not.toContain('hf_wrong');
  });

  it('a 403 for a gated model refuses the request, while any other 403 refuses the token', async () => {
    fake.failNext(403, {
      body: { error: 'Access to model black-forest-labs/FLUX.1-dev is restricted. You must have access to it.' },
    });
    const gated = await run().result.catch((e: unknown) => e);
    expect(gated).toBeInstanceOf(PermanentError);
    fake.failNext(403, { body: { error: 'This authentication method does not have sufficient permissions.' } });
    await expect(run().result).rejects.toBeInstanceOf(CredentialError);
  });

  it('402 and the monthly-credits wording are QuotaExceeded', async () => {
    fake.failNext(402, { body: { error: 'You have exceeded your monthly included credits for Inference Providers.' } });
    await expect(run().result).rejects.toBeInstanceOf(QuotaExceededError);
    fake.failNext(400, { body: { error: 'You have exceeded your monthly included credits for Inference Providers.' } });
    await expect(run().result).rejects.toBeInstanceOf(QuotaExceededError);
  });

  it('429 is RateLimited with Retry-After in seconds or as an HTTP date', async () => {
    fake.failNext(429, { retryAfter: '7' });
    const seconds = (await run().result.catch((e: unknown) => e)) as RateLimitedError;
    expect(seconds).toBeInstanceOf(RateLimitedError);
    expect(seconds).not.toBeInstanceOf(QuotaExceededError);
    expect(seconds.retryAfterMs).toBe(7000);
    fake.failNext(429, { retryAfter: new Date(Date.now() + 60_000).toUTCString() });
    const date = (await run().result.catch((e: unknown) => e)) as RateLimitedError;
    expect(date.retryAfterMs).toBeGreaterThan(55_000);
    expect(date.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('5xx and a 503 without estimated_time are retryable; 400 and an unknown model are permanent', async () => {
    fake.failNext(500);
    await expect(run().result).rejects.toBeInstanceOf(RetryableError);
    fake.failNext(503, { body: { error: 'Service Unavailable' } });
    await expect(run().result).rejects.toBeInstanceOf(RetryableError);
    fake.failNext(400, { body: { error: 'Input validation error: inputs must not be empty' } });
    await expect(run().result).rejects.toBeInstanceOf(PermanentError);
    const { ctx } = createRunContext({ credential });
    await expect(
      provider({ HF_MODELS: 'owner/missing' }).run(input({ model: 'owner/missing' }), ctx),
    ).rejects.toBeInstanceOf(PermanentError);
  });

  it('an answer that is no image is a retryable malformed output', async () => {
    fake.malformedNext();
    const error = (await run().result.catch((e: unknown) => e)) as RetryableError;
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.code).toBe('PROVIDER_BAD_OUTPUT');
  });

  it('an answer slower than the attempt: the abort stops it promptly and closes the connection', async () => {
    fake.slow(30_000);
    const controller = new AbortController();
    const reason = new Error('attempt timed out');
    const { result } = run({}, { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 100);
    const abortedBefore = fake.aborted;
    await expect(result).rejects.toBe(reason);
    await expect.poll(() => fake.aborted).toBe(abortedBefore + 1);
  });

  it('cancel during a model-loading wait stops the wait', async () => {
    fake.loading(1, 60);
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const { result } = run(
      {},
      { signal: controller.signal, onProgress: (stage) => stage === 'model loading' && controller.abort(reason) },
    );
    await expect(result).rejects.toBe(reason);
  });

  it('lists the default model first and HF_MODELS after it; txt2img only', () => {
    const models = provider({ HF_MODELS: 'stabilityai/stable-diffusion-xl-base-1.0' }).models();
    expect(models.map((model) => model.id)).toEqual([MODEL, 'stabilityai/stable-diffusion-xl-base-1.0']);
    expect(models.every((model) => model.kinds.join() === 'txt2img')).toBe(true);
    expect(() => readHuggingFaceConfig({ HF_MODELS: 'not a model' })).toThrow(/owner\/name/);
  });
});

describe('huggingface through Easel', () => {
  it('runs a task on a pool token and stores the image', async () => {
    const databaseUrl = await createTestDatabase();
    const easel = await startTestEasel(databaseUrl, {
      env: {
        HF_BASE_URL: fake.url,
        HUGGING_FACE_TOKENS: `${TOKEN},hf_test_token_b`,
        EASEL_SECRET_KEY: randomBytes(32).toString('hex'),
      },
    });
    try {
      const submitted = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'huggingface',
        prompt: 'a red fox',
        width: 64,
        height: 64,
        seed: 5,
      });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed'], 30_000);
      expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
      expect(done.model).toBe(MODEL);
      const response = await fetch(done.images[0]!.url);
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 64, height: 64 });

      // A 429 cools that token down; the task runs again on the other one and succeeds.
      fake.failNext(429, { retryAfter: '60' });
      const before = fake.requests.length;
      const limited = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'huggingface',
        prompt: 'again',
        width: 64,
        height: 64,
      });
      const second = await waitForStatus(easel.url, limited.body.id, ['succeeded', 'failed'], 30_000);
      expect(second.status, JSON.stringify(second.error)).toBe('succeeded');
      const tokens = fake.requests.slice(before).map((request) => request.token);
      expect(tokens).toHaveLength(2);
      expect(new Set(tokens).size).toBe(2);
    } finally {
      await easel.stop();
    }
  });
});
