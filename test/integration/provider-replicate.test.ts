import { AttemptAborted } from '../../src/providers/abort.js';
import { createHash, randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../../src/providers/errors.js';
import { readReplicateConfig, type ReplicateConfig } from '../../src/providers/replicate/config.js';
import { createReplicateProvider } from '../../src/providers/replicate/index.js';
import { startReplicateFake, type ReplicateFake } from '../fakes/replicate.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { eventually, killAll, spawnEasel, type EaselProcess } from '../helpers/processes.js';
import { createRunContext, taskInput } from '../helpers/run-context.js';

const TOKEN = 'r8_fake_token_0000000000000000000000000000';
const credential = { id: 'cred-1', label: 'test', secret: TOKEN };
const ANIMAGINE_40 =
  'aisha-ai-official/animagine-xl-4.0:057e2276ac5dcd8d1575dc37b131f903df9c10c41aed53d47cd7d4f068c19fa5';
const ANIMAGINE_31 = 'cjwbw/animagine-xl-3.1:6afe2e6b27dad2d6f480b59195c221884b6acc589ff4d05ff0e5fc058690fbb9';
const FLUX = 'black-forest-labs/flux-schnell';

let fake: ReplicateFake;
let config: ReplicateConfig;

beforeEach(async () => {
  fake = await startReplicateFake();
  config = readReplicateConfig({
    REPLICATE_BASE_URL: `${fake.url}/v1`,
    REPLICATE_WAIT_SECONDS: '5',
    REPLICATE_POLL_INTERVAL_MS: '20',
  });
});
afterEach(async () => {
  await fake.close();
});

const run = (overrides: Parameters<typeof taskInput>[0] = {}, options: Parameters<typeof createRunContext>[0] = {}) => {
  const { ctx, record } = createRunContext({ credential, ...options });
  const provider = createReplicateProvider(config);
  return { promise: provider.run(taskInput({ model: ANIMAGINE_40, ...overrides }), ctx), record };
};

const creates = () => fake.requests.filter((r) => r.method === 'POST' && !r.path.endsWith('/cancel'));

describe('replicate adapter: success', () => {
  it('creates a version prediction with Animagine 4.0 field names, polls it and decodes the image', async () => {
    const { promise, record } = run({ negativePrompt: 'lowres', steps: 28, guidance: 5 });
    const images = await promise;
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ contentType: 'image/png', width: 512, height: 512, seed: 42 });
    expect((await sharp(images[0]!.data).metadata()).format).toBe('png');

    const [create] = creates();
    expect(create).toMatchObject({
      path: '/v1/predictions',
      authorization: `Bearer ${TOKEN}`,
      prefer: 'wait=5',
      body: {
        version: '057e2276ac5dcd8d1575dc37b131f903df9c10c41aed53d47cd7d4f068c19fa5',
        input: {
          prompt: 'a lighthouse at dusk',
          negative_prompt: 'lowres',
          width: 512,
          height: 512,
          steps: 28,
          cfg_scale: 5,
          seed: 42,
        },
      },
    });
    const id = [...fake.predictions.keys()][0]!;
    expect(record.providerRefs).toEqual([id]);
    expect(record.predictTime).toBe(1.25);
    // starting → processing (percentages from the tqdm lines of the logs) → downloading
    const stages = record.progress.map((p) => `${p.stage}:${p.pct ?? ''}`);
    expect(stages[0]).toBe('starting:0');
    expect(stages).toContain('generating:33');
    expect(stages).toContain('generating:67');
    expect(stages.at(-1)).toBe('downloading:100');
    // The output file was fetched without the token (like replicate.delivery).
    expect(fake.requests.find((r) => r.path.startsWith('/files/'))?.authorization).toBeUndefined();
  });

  it('creates an official-model prediction at /models/{owner}/{name}/predictions, answered within Prefer: wait', async () => {
    fake.finishWithinWait = true;
    fake.format = 'webp';
    const images = await run({ model: FLUX, width: 1024, height: 576, steps: 4, n: 2, options: { go_fast: true } })
      .promise;
    expect(images.map((image) => image.contentType)).toEqual(['image/webp', 'image/webp']);
    const [create] = creates();
    expect(create!.path).toBe('/v1/models/black-forest-labs/flux-schnell/predictions');
    expect(create!.body).toEqual({
      input: {
        prompt: 'a lighthouse at dusk',
        aspect_ratio: '16:9',
        num_outputs: 2,
        num_inference_steps: 4,
        seed: 42,
        go_fast: true,
      },
    });
    // Finished within the wait: no poll needed.
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/v1/'))).toHaveLength(0);
  });

  it('sends Animagine 3.1 its diffusers field names and reads a single-string output and data: URIs', async () => {
    fake.outputAsString = true;
    const one = await run({ model: ANIMAGINE_31, options: { quality_selector: 'Standard v3.1' } }).promise;
    expect(one).toHaveLength(1);
    expect(creates()[0]!.body).toMatchObject({
      version: '6afe2e6b27dad2d6f480b59195c221884b6acc589ff4d05ff0e5fc058690fbb9',
      input: { num_inference_steps: 20, guidance_scale: 7, num_outputs: 1, quality_selector: 'Standard v3.1' },
    });
    fake.outputAsString = false;
    fake.outputAsDataUri = true;
    const two = await run({ model: ANIMAGINE_31, n: 2, width: 256, height: 128 }).promise;
    expect(two.map((image) => [image.width, image.height])).toEqual([
      [256, 128],
      [256, 128],
    ]);
  });
});

describe('replicate adapter: HTTP failures', () => {
  it('401 → CredentialError with the provider message, never the token', async () => {
    const { ctx } = createRunContext({ credential: { ...credential, secret: 'r8_wrong' } });
    const error = await createReplicateProvider(config)
      .run(taskInput({ model: ANIMAGINE_40 }), ctx)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toMatch(/valid authentication token/);
    expect((error as Error).message).not.toContain('r8_wrong');
  });

  it('402 → QuotaExceededError', async () => {
    fake.failNext(402, { detail: 'You have insufficient credit to run this model.' });
    const error = await run().promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect((error as Error).message).toMatch(/insufficient credit/);
  });

  it('429 with Retry-After in seconds and as an HTTP date → RateLimitedError with retryAfterMs', async () => {
    fake.failNext(429, { retryAfter: '7' });
    const seconds = (await run().promise.catch((e: unknown) => e)) as RateLimitedError;
    expect(seconds).toBeInstanceOf(RateLimitedError);
    expect(seconds).not.toBeInstanceOf(QuotaExceededError);
    expect(seconds.retryAfterMs).toBe(7000);
    expect(seconds.message).toMatch(/throttled/);

    fake.failNext(429, { retryAfter: new Date(Date.now() + 30_000).toUTCString() });
    const date = (await run().promise.catch((e: unknown) => e)) as RateLimitedError;
    expect(date).toBeInstanceOf(RateLimitedError);
    expect(date.retryAfterMs).toBeGreaterThan(20_000);
    expect(date.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(fake.creates).toBe(0);
  });

  it('5xx on create → RetryableError; a failed poll is retried, and polls failing for good cancel the prediction', async () => {
    fake.failNext(503, { detail: 'Service Unavailable' });
    const create = await run().promise.catch((e: unknown) => e);
    expect(create).toBeInstanceOf(RetryableError);
    expect((create as RetryableError).code).toBe('PROVIDER_UNAVAILABLE');
    expect(fake.creates).toBe(0);

    fake.failNext(500, { path: /^\/v1\/predictions\/[^/]+$/ });
    fake.failNext(429, { path: /^\/v1\/predictions\/[^/]+$/, retryAfter: '1' });
    expect(await run().promise).toHaveLength(1);
    expect(fake.creates).toBe(1);

    fake.failNext(502, { path: /^\/v1\/predictions\/[^/]+$/, times: 100 });
    const polls = await run().promise.catch((e: unknown) => e);
    expect(polls).toBeInstanceOf(RetryableError);
    expect(fake.creates).toBe(2);
    expect(fake.cancels).toEqual([[...fake.predictions.keys()][1]]);
  });

  it('a model Replicate does not know (404) and input it refuses (422) → PermanentError', async () => {
    const unknown = await run({ model: 'nobody/no-such-model' }).promise.catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(PermanentError);
    expect((unknown as Error).message).toMatch(/could not be found/);
    fake.failNext(422, { detail: '- input.width: Input should be less than or equal to 2048' });
    const invalid = await run().promise.catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(PermanentError);
    expect((invalid as Error).message).toMatch(/HTTP 422: - input.width/);
  });
});

describe('replicate adapter: prediction outcomes', () => {
  it('malformed output → RetryableError PROVIDER_BAD_OUTPUT', async () => {
    fake.outcome = { kind: 'malformed' };
    const error = await run().promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe('PROVIDER_BAD_OUTPUT');
  });

  it('data_removed → RetryableError PROVIDER_OUTPUT_GONE', async () => {
    fake.outcome = { kind: 'data_removed' };
    const error = await run().promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe('PROVIDER_OUTPUT_GONE');
  });

  it('failed: NSFW is permanent, CUDA out of memory and unknown text are retryable', async () => {
    fake.outcome = { kind: 'failed', error: 'NSFW content detected. Try running it again, or try a different prompt.' };
    const nsfw = await run().promise.catch((e: unknown) => e);
    expect(nsfw).toBeInstanceOf(PermanentError);
    expect((nsfw as Error).message).toMatch(/NSFW content detected/);

    fake.outcome = { kind: 'failed', error: 'CUDA out of memory. Tried to allocate 2.00 GiB' };
    expect(await run().promise.catch((e: unknown) => e)).toBeInstanceOf(RetryableError);
    fake.outcome = { kind: 'failed', error: 'Prediction interrupted; please retry (code: PA)' };
    expect(await run().promise.catch((e: unknown) => e)).toBeInstanceOf(RetryableError);
  });

  it('refuses before creating anything: an option the model does not take, n above what it makes', async () => {
    expect(await run({ options: { guidance_scale: 3 } }).promise.catch((e: unknown) => e)).toBeInstanceOf(
      PermanentError,
    );
    expect(await run({ n: 2 }).promise.catch((e: unknown) => e)).toBeInstanceOf(PermanentError);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('replicate adapter: abort, cancel and resume', () => {
  it('an answer slower than the attempt: on abort it stops promptly and cancels the prediction upstream', async () => {
    fake.outcome = { kind: 'never' };
    const controller = new AbortController();
    const reason = new AttemptAborted('timeout');
    const { promise } = run(
      {},
      {
        signal: controller.signal,
        onProgress: (stage) => stage === 'generating' && controller.abort(reason),
      },
    );
    expect(await promise.catch((e: unknown) => e)).toBe(reason);
    const id = [...fake.predictions.keys()][0]!;
    expect(fake.cancels).toEqual([id]);
    expect(fake.predictions.get(id)!.status).toBe('canceled');
  });

  it('on shutdown it leaves the prediction running, and the next attempt resumes it without a second create', async () => {
    fake.processingPolls = 4;
    const controller = new AbortController();
    const shutdown = new AttemptAborted('shutdown');
    const first = run(
      {},
      { signal: controller.signal, onProgress: (s) => s === 'generating' && controller.abort(shutdown) },
    );
    expect(await first.promise.catch((e: unknown) => e)).toBe(shutdown);
    expect(fake.cancels).toEqual([]);
    const ref = first.record.providerRefs[0]!;

    const second = run({ providerRef: ref, attempt: 2 });
    expect(await second.promise).toHaveLength(1);
    expect(fake.creates).toBe(1);
    expect(second.record.providerRefs).toEqual([]);
  });

  it('resumes a prediction that finished meanwhile, and creates a new one when the old one is gone (404)', async () => {
    await run().promise;
    const ref = [...fake.predictions.keys()][0]!;
    expect(await run({ providerRef: ref, attempt: 2 }).promise).toHaveLength(1);
    expect(fake.creates).toBe(1);

    fake.forget(ref);
    const again = run({ providerRef: ref, attempt: 3 });
    expect(await again.promise).toHaveLength(1);
    expect(fake.creates).toBe(2);
    expect(again.record.providerRefs).toHaveLength(1);
    expect(again.record.providerRefs[0]).not.toBe(ref);
  });
});

describe('the Replicate fake', () => {
  it('takes the old Token scheme, and refuses field names the model does not have', async () => {
    const post = (authorization: string, input: Record<string, unknown>) =>
      fetch(`${fake.url}/v1/predictions`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ version: ANIMAGINE_40.split(':')[1], input }),
      });
    expect((await post(`Token ${TOKEN}`, { prompt: 'x' })).status).toBe(201);
    const wrong = await post(`Bearer ${TOKEN}`, { prompt: 'x', num_inference_steps: 28 });
    expect(wrong.status).toBe(422);
    expect(((await wrong.json()) as { detail: string }).detail).toMatch(/num_inference_steps/);
  });
});

const SECRET_KEY = randomBytes(32).toString('hex');
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('replicate through Easel', () => {
  let easel: TestEasel | undefined;
  afterEach(async () => {
    await easel?.stop();
    easel = undefined;
  });

  it('imports REPLICATE_API_TOKEN, runs the default Animagine model and serves the image from Easel storage', async () => {
    easel = await startTestEasel(await createTestDatabase(), {
      env: {
        REPLICATE_BASE_URL: `${fake.url}/v1`,
        REPLICATE_API_TOKEN: TOKEN,
        REPLICATE_POLL_INTERVAL_MS: '20',
        EASEL_SECRET_KEY: SECRET_KEY,
      },
    });
    const submitted = await api(easel.url, 'POST', '/v1/tasks', {
      provider: 'replicate',
      prompt: '1girl, lighthouse, dusk',
      width: 256,
      height: 384,
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    expect(submitted.body.model).toBe(ANIMAGINE_40);
    const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.predict_time).toBe(1.25);
    const image = done.images[0]!;
    expect(image.url.startsWith(`${easel.url}/v1/tasks/`)).toBe(true);
    const response = await fetch(image.url);
    const bytes = Buffer.from(await response.arrayBuffer());
    const prediction = [...fake.predictions.values()][0]!;
    expect(sha256(bytes)).toBe(sha256(prediction.files[0]!));
    expect(image).toMatchObject({ content_type: 'image/png', width: 256, height: 384 });
    expect(fake.creates).toBe(1);
    // Replicate's file URLs and the token stay inside Easel.
    expect(JSON.stringify(done)).not.toContain(fake.url);
    expect(JSON.stringify(done)).not.toContain(TOKEN);

    const providers = await api<{ data: Array<{ id: string; models: Array<{ id: string; options?: unknown }> }> }>(
      easel.url,
      'GET',
      '/v1/providers',
    );
    const replicate = providers.body.data.find((provider) => provider.id === 'replicate');
    expect(replicate?.models[0]?.id).toBe(ANIMAGINE_40);
    expect(replicate?.models.map((model) => model.id)).toEqual(expect.arrayContaining([ANIMAGINE_31, FLUX]));
  }, 30_000);
});

describe('a worker killed after Replicate accepted the prediction', () => {
  const processes: EaselProcess[] = [];
  let easel: TestEasel | undefined;
  afterAll(async () => {
    await killAll(processes);
    await easel?.stop();
  });

  it('the next worker finishes the task on the same prediction: exactly one create', async () => {
    fake.outcome = { kind: 'never' };
    const env = {
      REPLICATE_BASE_URL: `${fake.url}/v1`,
      REPLICATE_API_TOKEN: TOKEN,
      REPLICATE_POLL_INTERVAL_MS: '50',
      EASEL_SECRET_KEY: SECRET_KEY,
    };
    const databaseUrl = await createTestDatabase();
    easel = await startTestEasel(databaseUrl, { roles: { api: true, worker: false }, env });
    const startWorker = () => {
      const worker = spawnEasel(['worker'], {
        ...env,
        DATABASE_URL: databaseUrl,
        // The same data directory as the API, which serves the images the worker stores.
        EASEL_DATA_DIR: easel!.config.dataDir,
        EASEL_HEARTBEAT_MS: '300',
        EASEL_WORKER_DEAD_AFTER_MS: '2000',
        EASEL_SHUTDOWN_GRACE_MS: '500',
        EASEL_RESCUE_INTERVAL_MS: '300',
        EASEL_POLL_INTERVAL_MS: '200',
        EASEL_RETRY_BASE_MS: '50',
        EASEL_RETRY_MAX_MS: '200',
      });
      processes.push(worker);
      return worker;
    };
    const withOutput = (worker: EaselProcess) => (error: Error) => {
      throw new Error(`${error.message}\n--- worker output ---\n${worker.output().slice(-4000)}`);
    };

    const doomed = startWorker();
    const { body } = await api(easel.url, 'POST', '/v1/tasks', { provider: 'replicate', prompt: 'survivor' });
    const accepted = await eventually(
      'Replicate to accept the prediction and the worker to poll it',
      async () => {
        const [prediction] = fake.predictions.values();
        return prediction && prediction.gets >= 2 ? prediction : undefined;
      },
      30_000,
      50,
    ).catch(withOutput(doomed));
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    // The model finishes while no worker is watching.
    accepted.outcome = { kind: 'succeeded' };
    accepted.processingPolls = accepted.gets + 1;

    const rescuer = startWorker();
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed'], 60_000).catch(withOutput(rescuer));
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.attempt).toBe(2);
    expect(fake.creates).toBe(1);
    expect(fake.cancels).toEqual([]);
    const bytes = Buffer.from(await (await fetch(done.images[0]!.url)).arrayBuffer());
    expect(sha256(bytes)).toBe(sha256(accepted.files[0]!));
  }, 90_000);
});
