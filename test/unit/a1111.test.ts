import { createServer } from 'node:net';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AttemptAborted } from '../../src/providers/abort.js';
import { readA1111Config } from '../../src/providers/a1111/config.js';
import { createA1111Provider } from '../../src/providers/a1111/index.js';
import { buildGenerationBody } from '../../src/providers/a1111/request.js';
import { CredentialError, PermanentError, RateLimitedError, RetryableError } from '../../src/providers/errors.js';
import type { TaskInput } from '../../src/providers/types.js';
import { startFakeA1111, type FakeA1111 } from '../fakes/a1111.js';
import { solidPng } from '../helpers/images.js';
import { createRunContext, taskInput, rejectionOf } from '../helpers/run-context.js';

const config = readA1111Config({ A1111_PROGRESS_INTERVAL_MS: '100', A1111_UNREACHABLE_COOLDOWN_MS: '1234' });
const provider = createA1111Provider(config);

let fake: FakeA1111;
let guarded: FakeA1111;

beforeAll(async () => {
  fake = await startFakeA1111({ stepMs: 25 });
  guarded = await startFakeA1111({ auth: 'easel:s3cret pass', stepMs: 5 });
});
afterAll(async () => {
  await fake?.close();
  await guarded?.close();
});
afterEach(() => {
  fake.reset();
});

const backend = (secret: string) => ({ id: 'cred-gpu', label: 'gpu', secret });

async function run(input: TaskInput, options: { secret?: string; signal?: AbortSignal } = {}) {
  const { ctx, record } = createRunContext({
    credential: backend(options.secret ?? fake.url),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const images = await provider.run(input, ctx);
  return { images, record };
}

const failure = (input: TaskInput, options: { secret?: string } = {}): Promise<Error> =>
  rejectionOf(run(input, options));

/** A port nothing listens on: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a1111: request', () => {
  it('maps the task onto the txt2img fields, the model onto the checkpoint and loras onto prompt tags', () => {
    const body = buildGenerationBody(
      taskInput({
        model: 'animagine-xl-3.1',
        negativePrompt: 'blurry',
        n: 3,
        guidance: 6.5,
        options: {
          sampler_name: 'DPM++ 2M',
          scheduler: 'Karras',
          loras: [{ name: 'add_detail', weight: 0.6 }, { name: 'pixel' }],
          clip_skip: 2,
          override_settings: { sd_vae: 'Automatic' },
        },
      }),
    );
    expect(body).toMatchObject({
      prompt: 'a lighthouse at dusk <lora:add_detail:0.6> <lora:pixel:1>',
      negative_prompt: 'blurry',
      width: 512,
      height: 512,
      steps: 20,
      cfg_scale: 6.5,
      seed: 42,
      batch_size: 3,
      n_iter: 1,
      sampler_name: 'DPM++ 2M',
      scheduler: 'Karras',
      override_settings: { sd_vae: 'Automatic', sd_model_checkpoint: 'animagine-xl-3.1', CLIP_stop_at_last_layers: 2 },
      override_settings_restore_afterwards: true,
    });
    expect(body).not.toHaveProperty('init_images');
  });

  it('leaves the loaded checkpoint alone for the model "default", and a checkpoint option wins over the model', () => {
    expect(buildGenerationBody(taskInput())).not.toHaveProperty('override_settings');
    const chosen = buildGenerationBody(taskInput({ model: 'sdxl', options: { checkpoint: 'juggernaut' } }));
    expect(chosen.override_settings).toEqual({ sd_model_checkpoint: 'juggernaut' });
  });
});

describe('a1111: txt2img and img2img against the fake WebUI', () => {
  it('returns the images with their seeds from info.all_seeds, dropping the grid the WebUI puts first', async () => {
    fake.returnGrid = true;
    const { images } = await run(taskInput({ n: 2, width: 64, height: 96, steps: 2 }));
    expect(images.map((image) => [image.width, image.height, image.seed])).toEqual([
      [64, 96, 42],
      [64, 96, 43],
    ]);
    expect(images[0]!.contentType).toBe('image/png');
  });

  it('reports progress with fresh previews while the job runs', async () => {
    const { record } = await run(taskInput({ steps: 20 }));
    const generating = record.progress.filter((entry) => entry.stage === 'generating');
    const percents = generating.map((entry) => entry.pct!);
    expect(percents.length).toBeGreaterThanOrEqual(3);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(Math.max(...percents)).toBeGreaterThan(0);
    expect(record.previews.length).toBeGreaterThan(0);
    // Each preview is a new image, never the same one twice.
    const texts = record.previews.map((preview) => preview.data.toString('base64'));
    expect(new Set(texts).size).toBe(texts.length);
    expect(record.previews[0]!.contentType).toBe('image/png');
    expect((await sharp(record.previews[0]!.data).metadata()).width).toBe(64);
  });

  it('sends img2img the input image as base64 and strength as denoising_strength', async () => {
    const input = await solidPng(64, 64, [10, 20, 30]);
    const { images } = await run(
      taskInput({
        kind: 'img2img',
        steps: 2,
        width: 64,
        height: 64,
        strength: 0.35,
        inputImage: { data: input, contentType: 'image/png', width: 64, height: 64 },
      }),
    );
    expect(images).toHaveLength(1);
    const seen = fake.generations.at(-1)!;
    expect(seen.path).toBe('/sdapi/v1/img2img');
    expect(seen.body.init_images).toEqual([input.toString('base64')]);
    expect(seen.body.denoising_strength).toBe(0.35);
  });

  it('sends basic auth from the URL user info, and a wrong password disables that server', async () => {
    const good = guarded.credentialUrl.replace('s3cret pass', encodeURIComponent('s3cret pass'));
    const { images } = await run(taskInput({ steps: 1 }), { secret: good });
    expect(images).toHaveLength(1);
    expect(guarded.generations.at(-1)!.authorization).toBe(
      `Basic ${Buffer.from('easel:s3cret pass').toString('base64')}`,
    );

    const error = await failure(taskInput({ steps: 1 }), {
      secret: guarded.url.replace('http://', 'http://easel:wrong@'),
    });
    expect(error).toBeInstanceOf(CredentialError);
    expect(error.message).toContain('Incorrect username or password');
    expect(error.message).not.toContain('wrong');
  });
});

describe('a1111: failures', () => {
  it('a 422 is permanent with the validation message', async () => {
    fake.fail({
      kind: 'status',
      status: 422,
      body: { detail: [{ loc: ['body', 'hr_scale'], msg: 'value is not a valid float', type: 'type_error.float' }] },
    });
    const error = await failure(taskInput({ steps: 1 }));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain('hr_scale: value is not a valid float');
  });

  it('an unknown sampler (the WebUI answers 404 "Sampler not found") is permanent, not a broken server', async () => {
    const error = await failure(taskInput({ steps: 1, options: { sampler_name: 'Nope' } }));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain('Sampler not found');
  });

  it('a server without --api (bare 404 on /sdapi) is a credential error telling the admin what to do', async () => {
    fake.fail({ kind: 'status', status: 404, body: { detail: 'Not Found' } });
    const error = await failure(taskInput({ steps: 1 }));
    expect(error).toBeInstanceOf(CredentialError);
    expect(error.message).toContain('--api');
  });

  it('out of GPU memory (500) is retryable and says so', async () => {
    fake.fail({ kind: 'oom' });
    const error = await failure(taskInput({ steps: 1 }));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toMatch(/OutOfMemoryError.*CUDA out of memory/);
  });

  it('a malformed answer is retryable', async () => {
    fake.fail({ kind: 'malformed' });
    const error = await failure(taskInput({ steps: 1 }));
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe('PROVIDER_BAD_OUTPUT');
  });

  it('a server that refuses connections is a short cooldown of that backend, not a failed attempt', async () => {
    const error = await failure(taskInput({ steps: 1 }), { secret: `http://127.0.0.1:${await closedPort()}` });
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryAfterMs: 1234 });
  });

  it('a server that takes long still delivers: there is no per-request deadline but the task timeout', async () => {
    fake.fail({ kind: 'slow', ms: 500 });
    const { images, record } = await run(taskInput({ steps: 8 }));
    expect(images).toHaveLength(1);
    // Meanwhile the WebUI's progress fell back to 0 (no job): Easel's progress does not.
    const percents = record.progress.filter((entry) => entry.stage === 'generating').map((entry) => entry.pct!);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBeGreaterThanOrEqual(50);
  });
});

describe('a1111: cancel', () => {
  it('cancel interrupts the job upstream, which then ends early', async () => {
    const controller = new AbortController();
    const running = run(taskInput({ steps: 200 }), { signal: controller.signal });
    await expect.poll(() => fake.running, { timeout: 5000 }).toBe(true);
    const interruptsBefore = fake.interrupts;
    controller.abort(new AttemptAborted('cancel'));
    await expect(running).rejects.toBeInstanceOf(AttemptAborted);
    expect(fake.interrupts).toBe(interruptsBefore + 1);
    await expect.poll(() => fake.running, { timeout: 2000 }).toBe(false);
  });

  it('shutdown leaves the job running upstream (there is nothing to resume it by, nor to stop)', async () => {
    const controller = new AbortController();
    const running = run(taskInput({ steps: 8 }), { signal: controller.signal });
    await expect.poll(() => fake.running, { timeout: 5000 }).toBe(true);
    const interruptsBefore = fake.interrupts;
    controller.abort(new AttemptAborted('shutdown'));
    await expect(running).rejects.toBeInstanceOf(AttemptAborted);
    expect(fake.interrupts).toBe(interruptsBefore);
    await expect.poll(() => fake.running, { timeout: 2000 }).toBe(false);
  });
});

describe('a1111: config', () => {
  it('lists the configured models, all taking txt2img and img2img with the options schema', () => {
    const models = createA1111Provider(readA1111Config({ A1111_MODELS: 'default, sdxl-base ,default' })).models();
    expect(models.map((model) => model.id)).toEqual(['default', 'sdxl-base']);
    expect(models[0]).toMatchObject({ kinds: ['txt2img', 'img2img'], maxWidth: 2048 });
    expect(models[0]!.options).toBeDefined();
  });

  it('refuses an empty model list', () => {
    expect(() => readA1111Config({ A1111_MODELS: ' , ' })).toThrow(/A1111_MODELS/);
  });
});
