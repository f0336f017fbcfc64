import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { CredentialError, PermanentError, RateLimitedError, RetryableError } from '../../src/providers/errors.js';
import { createSketchProvider } from '../../src/providers/sketch/index.js';
import { renderPixels, renderSketch } from '../../src/providers/sketch/render.js';
import type { TaskInput } from '../../src/providers/types.js';
import { createRunContext, taskInput } from '../helpers/run-context.js';

const sketch = createSketchProvider();

const input = (overrides: Partial<TaskInput> = {}): TaskInput =>
  taskInput({
    taskId: 't',
    model: 'sketch-v1',
    prompt: 'a red fox',
    width: 96,
    height: 64,
    steps: 5,
    seed: 1234,
    ...overrides,
  });

/** A RunContext that records progress with the time since it was made. */
function context(signal = new AbortController().signal, onProgress?: (stage: string, pct?: number) => void) {
  const { ctx, record } = createRunContext({ signal, ...(onProgress ? { onProgress } : {}) });
  return { ctx, progress: record.progress };
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function pngChunkTypes(png: Buffer): string[] {
  const types: string[] = [];
  for (let offset = 8; offset < png.length; offset += 12 + png.readUInt32BE(offset)) {
    types.push(png.toString('latin1', offset + 4, offset + 8));
  }
  return types;
}

describe('sketch provider: images', () => {
  it('offers one model, sketch-v1', () => {
    expect(sketch.id).toBe('sketch');
    expect(sketch.models()).toEqual([
      expect.objectContaining({
        id: 'sketch-v1',
        kinds: ['txt2img', 'img2img'],
        maxWidth: 2048,
        maxHeight: 2048,
        maxSteps: 150,
      }),
    ]);
  });

  it('renders a PNG of the requested size', async () => {
    const [image] = await sketch.run(input(), context().ctx);
    expect(image!.data.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(image!.data.toString('latin1', 12, 16)).toBe('IHDR');
    expect(image!.data.readUInt32BE(16)).toBe(96);
    expect(image!.data.readUInt32BE(20)).toBe(64);
    expect(image).toMatchObject({ contentType: 'image/png', width: 96, height: 64, seed: 1234 });
  });

  it('writes no timestamp or text metadata', async () => {
    const [image] = await sketch.run(input(), context().ctx);
    const types = pngChunkTypes(image!.data);
    expect(types[0]).toBe('IHDR');
    expect(types.at(-1)).toBe('IEND');
    expect(types.filter((type) => ['tIME', 'tEXt', 'zTXt', 'iTXt', 'eXIf'].includes(type))).toEqual([]);
  });

  it('gives byte-identical output for the same inputs, different for another seed, prompt or model', async () => {
    const render = async (overrides: Partial<TaskInput>) =>
      sha((await sketch.run(input(overrides), context().ctx))[0]!.data);
    const base = await render({});
    expect(await render({})).toBe(base);
    expect(await render({ seed: 1235 })).not.toBe(base);
    expect(await render({ prompt: 'a blue fox' })).not.toBe(base);
    expect(await render({ model: 'sketch-v2' })).not.toBe(base);
  });

  it('makes n images with seeds seed, seed+1, …, each the same as a run with that seed', async () => {
    const images = await sketch.run(input({ n: 3 }), context().ctx);
    expect(images.map((image) => image.seed)).toEqual([1234, 1235, 1236]);
    expect(new Set(images.map((image) => sha(image.data))).size).toBe(3);
    const [third] = await sketch.run(input({ seed: 1236 }), context().ctx);
    expect(sha(third!.data)).toBe(sha(images[2]!.data));
  });

  it('reports seed + i unwrapped past 2^32 − 1, and those images differ from seed 0', async () => {
    const images = await sketch.run(input({ seed: 4294967295, n: 2 }), context().ctx);
    expect(images.map((image) => image.seed)).toEqual([4294967295, 4294967296]);
    const [zero] = await sketch.run(input({ seed: 0 }), context().ctx);
    expect(sha(images[1]!.data)).not.toBe(sha(zero!.data));
  });

  it('renders the largest size', async () => {
    const [image] = await sketch.run(input({ width: 2048, height: 2048, steps: 1 }), context().ctx);
    expect(image!.data.readUInt32BE(16)).toBe(2048);
    expect(image!.data.readUInt32BE(20)).toBe(2048);
  });
});

describe('sketch provider: progress and latency', () => {
  it('reports monotonic progress through its steps, ending at 100', async () => {
    const { ctx, progress } = context();
    await sketch.run(input({ steps: 4 }), ctx);
    const generating = progress.filter(({ stage }) => stage === 'generating').map(({ pct }) => pct);
    expect(generating).toEqual([0, 25, 50, 75, 100]);
    const percents = progress.map(({ pct }) => pct ?? 0);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(progress.at(-1)).toMatchObject({ stage: 'encoding', pct: 100 });
  });

  it('spreads delay_ms over the steps', async () => {
    const { ctx, progress } = context();
    const started = performance.now();
    await sketch.run(input({ steps: 4, options: { delay_ms: 100 } }), ctx);
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    // Step k of 4 completes no earlier than k quarters of the delay: the wait is per step, not one lump.
    const steps = progress.filter(({ stage, pct }) => stage === 'generating' && pct !== 0);
    steps.forEach(({ at }, k) => expect(at).toBeGreaterThanOrEqual(25 * (k + 1) - 3));
  });
});

describe('sketch provider: abort', () => {
  it('stops promptly when aborted mid-sleep, with the abort reason', async () => {
    const controller = new AbortController();
    // 30 s a step: only an abort honoured inside the sleep can end this within the test timeout.
    const run = sketch.run(input({ steps: 2, options: { delay_ms: 60_000 } }), context(controller.signal).ctx);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const abortedAt = performance.now();
    controller.abort(new Error('stop now'));
    await expect(run).rejects.toThrow('stop now');
    expect(performance.now() - abortedAt).toBeLessThan(5_000); // generous: the point is "not 30 s"
  });

  it('checks the signal at every step even with no delay', async () => {
    const controller = new AbortController();
    const { ctx, progress } = context(controller.signal, (_stage, pct) => {
      if (pct === 40) controller.abort(new Error('cancelled at 40%'));
    });
    await expect(sketch.run(input({ steps: 5 }), ctx)).rejects.toThrow('cancelled at 40%');
    expect(progress.map(({ pct }) => pct)).toEqual([0, 20, 40]);
  });

  it('does not start when already aborted, even with bad options', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    const { ctx, progress } = context(controller.signal);
    await expect(sketch.run(input({ options: { nope: 1 } }), ctx)).rejects.toThrow('gone');
    expect(progress).toEqual([]);
  });

  it('throws an AbortError when the reason is not an Error', async () => {
    const controller = new AbortController();
    controller.abort('shutdown');
    const error = await sketch.run(input(), context(controller.signal).ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('AbortError');
  });
});

describe('sketch provider: faults on demand', () => {
  it.each([
    ['retryable', RetryableError, 'PROVIDER_UNAVAILABLE'],
    ['rate_limited', RateLimitedError, 'PROVIDER_RATE_LIMITED'],
    ['credential', CredentialError, 'PROVIDER_CREDENTIAL_REJECTED'],
    ['permanent', PermanentError, 'PROVIDER_REJECTED'],
  ] as const)('fails on demand as %s', async (fail, ErrorClass, code) => {
    const error = await sketch.run(input({ options: { fail } }), context().ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error).toMatchObject({ code, errorClass: fail });
  });

  it('fails after the delay has elapsed', async () => {
    const started = performance.now();
    await expect(
      sketch.run(input({ options: { fail: 'retryable', delay_ms: 50 } }), context().ctx),
    ).rejects.toBeInstanceOf(RetryableError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('carries retry_after_ms on an injected rate limit', async () => {
    const error = await sketch
      .run(input({ options: { fail: 'rate_limited', retry_after_ms: 750 } }), context().ctx)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(750);
  });

  it('fails only the first fail_attempts attempts', async () => {
    const options = { fail: 'retryable', fail_attempts: 2 };
    await expect(sketch.run(input({ options, attempt: 1 }), context().ctx)).rejects.toBeInstanceOf(RetryableError);
    await expect(sketch.run(input({ options, attempt: 2 }), context().ctx)).rejects.toBeInstanceOf(RetryableError);
    await expect(sketch.run(input({ options, attempt: 3 }), context().ctx)).resolves.toHaveLength(1);
  });

  it('fails every attempt without fail_attempts', async () => {
    await expect(
      sketch.run(input({ options: { fail: 'retryable' }, attempt: 9 }), context().ctx),
    ).rejects.toBeInstanceOf(RetryableError);
  });

  it.each<[Record<string, unknown>, RegExp]>([
    [{ delay_ms: -1 }, /delay_ms/],
    [{ delay_ms: 1.5 }, /delay_ms/],
    [{ delay_ms: '100' }, /delay_ms/],
    [{ delay_ms: 600_001 }, /delay_ms/],
    [{ fail: 'sometimes' }, /fail must be one of/],
    [{ colour: 'red' }, /unknown option colour/],
    [{ fail: 'retryable', fail_attempts: 0 }, /fail_attempts/],
    [{ fail_attempts: 2 }, /fail_attempts needs fail/],
    [{ fail: 'retryable', retry_after_ms: 100 }, /retry_after_ms needs fail: rate_limited/],
  ])('rejects bad options %o as INVALID_PROVIDER_OPTIONS', async (options, message) => {
    const error = await sketch.run(input({ options }), context().ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ code: 'INVALID_PROVIDER_OPTIONS', message });
  });
});

describe('sketch PNG encoding', () => {
  it('decodes, with an independent decoder (libvips), to exactly the rendered pixels', async () => {
    const spec = { prompt: 'a red fox', model: 'sketch-v1', seed: 9, width: 96, height: 40 };
    const pixels = renderPixels(spec);
    const { data, info } = await sharp(await renderSketch(spec))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 96, height: 40, channels: 3 });
    expect(Buffer.compare(data, pixels)).toBe(0);
  });
});

describe('sketch provider: img2img', () => {
  const inputOf = async (width: number, height: number, background: string) => ({
    data: await sharp({ create: { width, height, channels: 3, background } })
      .png()
      .toBuffer(),
    contentType: 'image/png',
    width,
    height,
  });
  const means = async (png: Buffer) => (await sharp(png).stats()).channels.map((channel) => channel.mean);

  it('at strength 0 returns the input resized to the output size; at 1 the txt2img picture', async () => {
    const inputImage = await inputOf(30, 20, '#00ff00');
    const [kept] = await sketch.run(input({ kind: 'img2img', inputImage, strength: 0 }), context().ctx);
    expect(kept).toMatchObject({ width: 96, height: 64, contentType: 'image/png' });
    expect(await means(kept!.data)).toEqual([0, 255, 0]);
    const [drawn] = await sketch.run(input({ kind: 'img2img', inputImage, strength: 1 }), context().ctx);
    const [plain] = await sketch.run(input(), context().ctx);
    expect(sha(drawn!.data)).toBe(sha(plain!.data));
  });

  it('blends in between, deterministically', async () => {
    const inputImage = await inputOf(96, 64, '#ff0000');
    const run = async () =>
      (await sketch.run(input({ kind: 'img2img', inputImage, strength: 0.5 }), context().ctx))[0]!.data;
    const [first, second] = [await run(), await run()];
    expect(sha(first)).toBe(sha(second));
    const [red, green] = await means(first);
    expect(red).toBeGreaterThanOrEqual(127);
    expect(green).toBeLessThanOrEqual(128);
  });
});
