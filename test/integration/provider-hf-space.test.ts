import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHfSpaceConfig } from '../../src/providers/hf-space/config.js';
import { createHfSpaceProvider } from '../../src/providers/hf-space/index.js';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../../src/providers/errors.js';
import type { InputImage } from '../../src/providers/types.js';
import { AttemptAborted } from '../../src/providers/abort.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus } from '../helpers/easel.js';
import { dataUrl, meanRgb, solidPng } from '../helpers/images.js';
import { createRunContext, taskInput } from '../helpers/run-context.js';
import { GHIBLI_FN_INDEX, startGradioFake, type GradioFake } from '../fakes/gradio-space.js';

const TOKEN = 'hf_space_token_a';
const credential = { id: 'c1', label: 'test', secret: TOKEN };
let fake: GradioFake;
let inputImage: InputImage;

beforeAll(async () => {
  fake = await startGradioFake({ tokens: [TOKEN, 'hf_space_token_b'] });
  inputImage = { data: await solidPng(96, 80, [200, 40, 40]), contentType: 'image/png', width: 96, height: 80 };
});
afterAll(async () => {
  await fake?.close();
});

const provider = () => createHfSpaceProvider(readHfSpaceConfig({ HF_SPACE_GHIBLI_URL: fake.url }));
const input = (overrides = {}) =>
  taskInput({ kind: 'img2img', model: 'ghibli', width: 96, height: 80, inputImage, strength: 0.8, ...overrides });
const run = (overrides = {}, options: Parameters<typeof createRunContext>[0] = {}) => {
  const { ctx, record } = createRunContext({ credential, ...options });
  return { result: provider().run(input(overrides), ctx), record };
};
const failure = async (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe('hf-space adapter (Ghibli)', () => {
  it('uploads the input, calls /single_condition_generate_image and downloads the output', async () => {
    const before = { ...fake.counts };
    const { result, record } = run({ seed: 9 });
    const images = await result;
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ contentType: 'image/png', width: 96, height: 80, seed: 9 });
    // The fake answers the negated input: an output derived from the input, not the input.
    const [r] = await meanRgb(images[0]!.data);
    expect(r).toBeLessThan(100);
    expect(fake.counts.uploads - before.uploads).toBe(1);
    expect(fake.counts.calls - before.calls).toBe(1);
    const call = fake.calls.at(-1)!;
    expect(call.token).toBe(TOKEN);
    expect(call.data).toEqual([
      'a lighthouse at dusk',
      expect.objectContaining({ path: expect.stringMatching(/^\/tmp\/gradio\//), meta: { _type: 'gradio.FileData' } }),
      80,
      96,
      9,
      'Ghibli',
    ]);
    expect(JSON.parse(record.providerRefs[0]!)).toMatchObject({ eventId: expect.any(String), index: 0 });
    expect(record.progress.map((entry) => entry.stage)).toEqual(
      expect.arrayContaining(['uploading', 'queued', 'generating', 'downloading']),
    );
  });

  it('resumes a saved call from providerRef: no second upload or call', async () => {
    // The worker dies right after the Space accepted the call, before reading its stream.
    const controller = new AbortController();
    const { ctx, record } = createRunContext({ credential, signal: controller.signal });
    ctx.saveProviderRef = async (ref) => {
      record.providerRefs.push(ref);
      controller.abort(new AttemptAborted('shutdown'));
    };
    await expect(provider().run(input(), ctx)).rejects.toBeInstanceOf(AttemptAborted);
    const before = { ...fake.counts };
    const images = await run({ providerRef: record.providerRefs[0]!, attempt: 2 }).result;
    expect(images).toHaveLength(1);
    expect(fake.counts.uploads).toBe(before.uploads);
    expect(fake.counts.calls).toBe(before.calls);
    expect(fake.counts.streams).toBe(before.streams + 1);
  });

  it('starts a new call when the saved one is gone (its reader left, so Gradio cleaned it)', async () => {
    fake.nextOutcome({ kind: 'hang' });
    const controller = new AbortController();
    const first = run({}, { signal: controller.signal });
    await expect.poll(() => first.record.providerRefs.length).toBe(1);
    controller.abort(new AttemptAborted('shutdown'));
    await expect(first.result).rejects.toBeInstanceOf(AttemptAborted);
    const { eventId } = JSON.parse(first.record.providerRefs[0]!) as { eventId: string };
    await expect.poll(() => fake.eventState(eventId)).toBe('cleaned');
    const before = { ...fake.counts };
    await run({ providerRef: first.record.providerRefs[0]!, attempt: 2 }).result;
    expect(fake.counts.streams).toBe(before.streams + 2);
    expect(fake.counts.calls).toBe(before.calls + 1);
  });

  it('never rereads a stream that already ended (Gradio would only send heartbeats)', async () => {
    fake.nextOutcome({ kind: 'malformed' });
    const first = run();
    await expect(first.result).rejects.toBeInstanceOf(RetryableError);
    const last = first.record.providerRefs.at(-1)!;
    expect(JSON.parse(last)).toMatchObject({ consumed: true });
    const before = { ...fake.counts };
    await run({ providerRef: last, attempt: 2 }).result;
    expect(fake.counts.calls).toBe(before.calls + 1);
    expect(fake.counts.streams).toBe(before.streams + 1);
  });

  it('n > 1 makes one call per image with consecutive seeds', async () => {
    const images = await run({ n: 2, seed: 20 }).result;
    expect(images.map((image) => image.seed)).toEqual([20, 21]);
    expect(fake.calls.slice(-2).map((call) => call.data[4])).toEqual([20, 21]);
  });

  it('a refused token disables the credential', async () => {
    const error = await failure(run({}, { credential: { ...credential, secret: 'hf_wrong' } }).result);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).not.toContain('hf_wrong');
  });

  it('a ZeroGPU quota error is QuotaExceeded with its "retry in" time', async () => {
    fake.nextOutcome({
      kind: 'error',
      data: JSON.stringify({
        error:
          'You have exceeded your GPU quota (46s left vs. 60s requested). Sign-up on Hugging Face to get more quotas or retry in 0:09:48.',
        title: 'ZeroGPU quota exceeded',
      }),
    });
    const error = (await failure(run().result)) as QuotaExceededError;
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error.retryAfterMs).toBe((9 * 60 + 48) * 1000);
    expect(error.message).toContain('exceeded your GPU quota');
  });

  it('other error events: null data and unknown words retry, validation words fail', async () => {
    fake.nextOutcome({ kind: 'error', data: 'null' });
    expect(await failure(run().result)).toBeInstanceOf(RetryableError);
    fake.nextOutcome({ kind: 'error', data: '"CUDA out of memory"' });
    expect(await failure(run().result)).toBeInstanceOf(RetryableError);
    fake.nextOutcome({ kind: 'error', data: JSON.stringify({ error: 'Invalid image: cannot identify image file' }) });
    expect(await failure(run().result)).toBeInstanceOf(PermanentError);
  });

  it('429 with Retry-After (seconds and HTTP date), 402, 503 queue full, 422 on the call', async () => {
    fake.failNextCall(429, { detail: 'Too many requests' }, { 'retry-after': '12' });
    const seconds = (await failure(run().result)) as RateLimitedError;
    expect(seconds).toBeInstanceOf(RateLimitedError);
    expect(seconds.retryAfterMs).toBe(12_000);
    fake.failNextCall(
      429,
      { detail: 'Too many requests' },
      { 'retry-after': new Date(Date.now() + 30_000).toUTCString() },
    );
    const date = (await failure(run().result)) as RateLimitedError;
    expect(date.retryAfterMs).toBeGreaterThan(25_000);
    fake.failNextCall(400, {
      detail: 'You have exceeded your free ZeroGPU quota (120s requested vs. 44s left). Try again in 1:00:05.',
    });
    const quota = (await failure(run().result)) as QuotaExceededError;
    expect(quota).toBeInstanceOf(QuotaExceededError);
    expect(quota.retryAfterMs).toBe(3_605_000);
    fake.failNextCall(402, { detail: 'Payment required' });
    expect(await failure(run().result)).toBeInstanceOf(QuotaExceededError);
    fake.failNextCall(503, { detail: 'Queue is full' });
    expect(await failure(run().result)).toBeInstanceOf(RetryableError);
    fake.failNextCall(422, { detail: 'Validation error' });
    expect(await failure(run().result)).toBeInstanceOf(PermanentError);
  });

  it('malformed results are retryable, and the input is never returned as a result', async () => {
    for (const kind of ['malformed', 'cut', 'echo-input', 'echo-bytes'] as const) {
      fake.nextOutcome({ kind });
      const error = (await failure(run().result)) as RetryableError;
      expect(error, kind).toBeInstanceOf(RetryableError);
      expect(error.code, kind).toBe('PROVIDER_BAD_OUTPUT');
    }
  });

  it('an answer slower than the attempt: the timeout stops it promptly and cancels the call upstream', async () => {
    fake.nextOutcome({ kind: 'hang' });
    const controller = new AbortController();
    const reason = new AttemptAborted('timeout');
    const before = fake.counts.cancels;
    const { result, record } = run({}, { signal: controller.signal });
    await expect.poll(() => record.providerRefs.length).toBe(1);
    controller.abort(reason);
    expect(await failure(result)).toBe(reason);
    expect(fake.counts.cancels).toBe(before + 1);
    const eventId = (JSON.parse(record.providerRefs[0]!) as { eventId: string }).eventId;
    expect(fake.cancels.at(-1)).toEqual({ event_id: eventId, session_hash: eventId, fn_index: GHIBLI_FN_INDEX });
  });

  it('cancel cancels upstream; shutdown sends no cancel', async () => {
    for (const why of ['cancel', 'shutdown'] as const) {
      fake.nextOutcome({ kind: 'hang' });
      const controller = new AbortController();
      const before = fake.counts.cancels;
      const { result, record } = run({}, { signal: controller.signal });
      await expect.poll(() => record.providerRefs.length).toBe(1);
      const reason = new AttemptAborted(why);
      controller.abort(reason);
      expect(await failure(result)).toBe(reason);
      expect(fake.counts.cancels - before, why).toBe(why === 'cancel' ? 1 : 0);
    }
  });

  it('serves img2img only, with no options', () => {
    const [model] = provider().models();
    expect(model).toMatchObject({ id: 'ghibli', kinds: ['img2img'] });
  });
});

describe('hf-space through Easel', () => {
  it('runs an img2img task with a data-URL image on a pool token', async () => {
    const databaseUrl = await createTestDatabase();
    const easel = await startTestEasel(databaseUrl, {
      env: {
        HF_SPACE_GHIBLI_URL: fake.url,
        HUGGING_FACE_TOKENS: `${TOKEN},hf_space_token_b`,
        EASEL_SECRET_KEY: randomBytes(32).toString('hex'),
      },
    });
    try {
      const png = await solidPng(128, 128, [20, 200, 20]);
      const submitted = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'hf-space',
        model: 'ghibli',
        kind: 'img2img',
        image: dataUrl(png),
        prompt: 'ghibli style',
        width: 128,
        height: 128,
      });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed'], 30_000);
      expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
      const bytes = Buffer.from(await (await fetch(done.images[0]!.url)).arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 128, height: 128 });
      const [r, g] = await meanRgb(bytes);
      // The fake negates the input: green becomes magenta.
      expect(r).toBeGreaterThan(200);
      expect(g).toBeLessThan(100);

      // ZeroGPU quota on one token: it rests, the task runs on the other token and succeeds.
      fake.nextOutcome({
        kind: 'error',
        data: JSON.stringify({
          error: 'You have exceeded your GPU quota (60s requested vs. 10s left). Try again in 0:30:00.',
        }),
      });
      const before = fake.calls.length;
      const again = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'hf-space',
        kind: 'img2img',
        image: dataUrl(png),
        prompt: 'ghibli style',
        width: 128,
        height: 128,
      });
      const second = await waitForStatus(easel.url, again.body.id, ['succeeded', 'failed'], 30_000);
      expect(second.status, JSON.stringify(second.error)).toBe('succeeded');
      const tokens = fake.calls.slice(before).map((call) => call.token);
      expect(tokens).toHaveLength(2);
      expect(new Set(tokens).size).toBe(2);
    } finally {
      await easel.stop();
    }
  });
});
