import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttemptAborted } from '../../src/providers/abort.js';
import { readComfyUIConfig, type ComfyUIConfig } from '../../src/providers/comfyui/config.js';
import { createComfyUIProvider } from '../../src/providers/comfyui/index.js';
import { EASEL_CLIENT_ID } from '../../src/providers/comfyui/socket.js';
import { PermanentError, RateLimitedError, RetryableError } from '../../src/providers/errors.js';
import type { PreviewImage } from '../../src/providers/types.js';
import { startComfyUIFake, type ComfyUIFake } from '../fakes/comfyui.js';
import { eventually } from '../helpers/processes.js';
import { createRunContext, taskInput } from '../helpers/run-context.js';

let fake: ComfyUIFake;
let config: ComfyUIConfig;

beforeEach(async () => {
  fake = await startComfyUIFake();
  config = readComfyUIConfig({ COMFYUI_POLL_INTERVAL_MS: '20', COMFYUI_CONNECT_TIMEOUT_MS: '2000' });
});
afterEach(async () => {
  await fake.close();
});

const credential = () => ({ id: 'cred-1', label: 'gpu1', secret: fake.url });

/** Runs one task against the fake; `previews` records the frames handed to ctx.progress. */
function run(overrides: Parameters<typeof taskInput>[0] = {}, options: { credentialSecret?: string } = {}) {
  const controller = new AbortController();
  const { ctx, record } = createRunContext({
    signal: controller.signal,
    credential: { ...credential(), ...(options.credentialSecret ? { secret: options.credentialSecret } : {}) },
  });
  const previews: PreviewImage[] = [];
  const report = ctx.progress;
  ctx.progress = (stage, pct, preview) => {
    if (preview) previews.push(preview);
    report(stage, pct);
  };
  const promise = createComfyUIProvider(config).run(taskInput({ steps: 4, ...overrides }), ctx);
  promise.catch(() => {});
  return { promise, record, previews, cancel: () => controller.abort(new AttemptAborted('cancel')), controller };
}

const posts = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/prompt');

describe('comfyui adapter: a prompt from queue to image', () => {
  it('queues the filled template under Easel client id, reports progress in order with previews, and returns the image', async () => {
    const task = run({
      width: 320,
      height: 192,
      seed: 77,
      negativePrompt: 'blurry',
      options: { checkpoint: 'sd_xl_base_1.0.safetensors' },
    });
    const images = await task.promise;
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ contentType: 'image/png', width: 320, height: 192, seed: 77 });
    expect(images[0]!.data.equals(fake.files.get('easel_00001_.png')!)).toBe(true);

    const [post] = posts();
    const body = post!.body as {
      client_id: string;
      prompt_id: string;
      prompt: Record<string, { inputs: Record<string, unknown> }>;
    };
    expect(body.client_id).toBe(EASEL_CLIENT_ID);
    expect(body.prompt['4']!.inputs.ckpt_name).toBe('sd_xl_base_1.0.safetensors');
    expect(body.prompt['5']!.inputs).toEqual({ width: 320, height: 192, batch_size: 1 });
    expect(body.prompt['7']!.inputs.text).toBe('blurry');
    expect(task.record.providerRefs).toEqual([`${body.prompt_id}@cred-1`]);
    expect(fake.prompts[0]!.id).toBe(body.prompt_id);

    const stages = task.record.progress.map((p) => `${p.stage}:${p.pct ?? ''}`);
    // One progress event per sampler step, in order, then the download.
    const steps = stages.filter((s) => s !== 'generating:0' && s.startsWith('generating'));
    expect(steps.filter((s, i) => s !== steps[i - 1])).toEqual([
      'generating:25',
      'generating:50',
      'generating:75',
      'generating:100',
    ]);
    expect(stages.indexOf('generating:0')).toBeLessThan(stages.indexOf('generating:25'));
    expect(stages.at(-1)).toBe('downloading:100');
    expect(task.previews.length).toBeGreaterThanOrEqual(3);
    expect(task.previews[0]!.contentType).toBe('image/jpeg');
    expect((await sharp(task.previews[0]!.data).metadata()).format).toBe('jpeg');
  });

  it('img2img uploads the input image first and points LoadImage at it; n images from one batch', async () => {
    const input = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    const images = await run({
      kind: 'img2img',
      inputImage: { data: input, contentType: 'image/png', width: 96, height: 64 },
      strength: 0.4,
      n: 2,
    }).promise;
    expect(images.map((i) => [i.width, i.height])).toEqual([
      [96, 64],
      [96, 64],
    ]);
    const name = `easel-${taskInput().taskId}.png`;
    expect(fake.uploads.get(name)?.equals(input)).toBe(true);
    const graph = (posts()[0]!.body as { prompt: Record<string, { inputs: Record<string, unknown> }> }).prompt;
    expect(graph['10']!.inputs.image).toBe(name);
    expect(graph['3']!.inputs.denoise).toBe(0.4);
  });

  it('an older server that picks its own prompt_id: the ref follows its id', async () => {
    fake.legacyPromptIds = true;
    const task = run();
    await task.promise;
    const chosen = (posts()[0]!.body as { prompt_id: string }).prompt_id;
    expect(fake.prompts[0]!.id).not.toBe(chosen);
    expect(task.record.providerRefs).toEqual([`${chosen}@cred-1`, `${fake.prompts[0]!.id}@cred-1`]);
  });

  it('sends basic auth from the backend URL on HTTP and on the websocket', async () => {
    fake.auth = 'comfy:s3cret';
    const secret = fake.url.replace('http://', 'http://comfy:s3cret@');
    const task = run({}, { credentialSecret: secret });
    expect(await task.promise).toHaveLength(1);
    expect(task.previews.length).toBeGreaterThan(0);
  });
});

describe('comfyui adapter: cancel touches only our prompt', () => {
  it('two tasks on one backend: canceling the queued one deletes it, the running one completes', async () => {
    fake.stepMs = 60;
    const first = run({ prompt: 'first', steps: 6 });
    await eventually('first prompt running', async () => fake.running(), 10_000, 10);
    const second = run({ prompt: 'second' });
    await eventually('second prompt queued', async () => (fake.prompts.length === 2 ? true : undefined), 10_000, 10);
    const secondId = fake.prompts[1]!.id;
    second.cancel();
    await expect(second.promise).rejects.toBeInstanceOf(AttemptAborted);
    expect(fake.deleted).toEqual([secondId]);
    expect(fake.interrupts).toEqual([]);
    expect(await first.promise).toHaveLength(1);
    expect(fake.history.get(fake.prompts[0]!.id)?.status.status_str).toBe('success');
  });

  it('canceling the running one interrupts exactly that prompt, and the queued one runs on', async () => {
    fake.stepMs = 60;
    const first = run({ prompt: 'first', steps: 50 });
    await eventually('first prompt running', async () => fake.running(), 10_000, 10);
    const second = run({ prompt: 'second' });
    await eventually(
      'second task reporting its place in the queue',
      async () => second.record.progress.some((p) => p.stage === 'queued'),
      10_000,
      10,
    );
    first.cancel();
    await expect(first.promise).rejects.toBeInstanceOf(AttemptAborted);
    expect(fake.interrupts).toEqual([{ asked: fake.prompts[0]!.id, stopped: fake.prompts[0]!.id }]);
    expect(fake.deleted).toEqual([]);
    expect(await second.promise).toHaveLength(1);
    expect(fake.history.get(fake.prompts[1]!.id)?.status.status_str).toBe('success');
    // It waited behind the first one, then generated.
    const stages = second.record.progress.map((p) => p.stage);
    expect(stages[0]).toBe('queued');
    expect(stages.indexOf('generating')).toBeGreaterThan(0);
  });

  it('on a server whose /interrupt stops whatever runs, a queued prompt is deleted and nothing is interrupted', async () => {
    fake.legacyInterrupt = true;
    fake.stepMs = 60;
    const first = run({ prompt: 'first', steps: 8 });
    await eventually('first prompt running', async () => fake.running(), 10_000, 10);
    const second = run({ prompt: 'second' });
    await eventually('second prompt queued', async () => (fake.prompts.length === 2 ? true : undefined), 10_000, 10);
    second.cancel();
    await expect(second.promise).rejects.toBeInstanceOf(AttemptAborted);
    expect(fake.interrupts).toEqual([]);
    expect(await first.promise).toHaveLength(1);
  });

  it('someone else interrupting our prompt is retryable, not a cancel', async () => {
    fake.stepMs = 40;
    const task = run({ steps: 50 });
    await eventually('prompt running', async () => fake.running(), 10_000, 10);
    await fetch(`${fake.url}/interrupt`, { method: 'POST' });
    const error = await task.promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toMatch(/interrupted .* by someone else/);
  });
});

describe('comfyui adapter: failures', () => {
  it('a 400 with node_errors is permanent and says which node and value', async () => {
    const error = await run({ options: { checkpoint: 'nope.safetensors' } }).promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as Error).message).toMatch(
      /Prompt outputs failed validation; CheckpointLoaderSimple \(node 4\): Value not in list: ckpt_name: 'nope.safetensors' not in/,
    );
    // Refused, so never queued: nothing to stop.
    expect(fake.requests.filter((r) => r.path === '/queue')).toEqual([]);
  });

  it('execution_error: out of memory is retryable, a node failure is permanent, with the message', async () => {
    fake.outcomes.push(
      { kind: 'error', exceptionType: 'torch.OutOfMemoryError', message: 'Allocation on device' },
      { kind: 'error', exceptionType: 'FileNotFoundError', message: 'lora.safetensors not found' },
    );
    const oom = await run().promise.catch((e: unknown) => e);
    expect(oom).toBeInstanceOf(RetryableError);
    expect((oom as Error).message).toMatch(/failed in KSampler node 3: torch.OutOfMemoryError: Allocation on device/);
    const missing = await run().promise.catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(PermanentError);
    expect((missing as Error).message).toMatch(/FileNotFoundError: lora.safetensors not found/);
  });

  it('500 from /prompt is retryable; a refused connection is a short rate limit on the backend', async () => {
    fake.failNext(500, { path: /^\/prompt$/ });
    const server = await run().promise.catch((e: unknown) => e);
    expect(server).toBeInstanceOf(RetryableError);
    expect((server as RetryableError).code).toBe('PROVIDER_UNAVAILABLE');

    const url = fake.url;
    await fake.close();
    const refused = await run({}, { credentialSecret: url }).promise.catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryAfterMs: 5000 });
    expect((refused as Error).message).toMatch(/does not answer \(ECONNREFUSED\)/);
    fake = await startComfyUIFake();
  });

  it('failed reads while following are tried again; failing for good stops the prompt', async () => {
    fake.slowMs = 30;
    fake.failNext(502, { path: /^\/history\//, times: 2 });
    fake.failNext(200, { path: /^\/queue$/, times: 1, body: 'not json' });
    expect(await run().promise).toHaveLength(1);
    expect(posts()).toHaveLength(1);

    fake.slowMs = 0;
    fake.stepMs = 50;
    fake.failNext(503, { path: /^\/history\//, times: 100 });
    const error = await run({ steps: 100 }).promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toMatch(/HTTP 503/);
    // Nobody would collect it: the running prompt was interrupted.
    expect(fake.interrupts).toEqual([{ asked: fake.prompts[1]!.id, stopped: fake.prompts[1]!.id }]);
  });
});

describe('comfyui adapter: websocket trouble', () => {
  it('without a websocket the outcome comes from polling /history', async () => {
    fake.refuseWebsocket = true;
    const task = run();
    expect(await task.promise).toHaveLength(1);
    expect(task.previews).toEqual([]);
    expect(fake.requests.filter((r) => r.path.startsWith('/history/')).length).toBeGreaterThan(1);
  });

  it('a history entry that trails execution_success (as main.py writes it) is waited for, not taken as lost', async () => {
    fake.historyLagMs = 300;
    const task = run();
    expect(await task.promise).toHaveLength(1);
    expect(posts()).toHaveLength(1);
  });

  it('a websocket that never opens: polled after the connect timeout, and a cancel meanwhile is prompt', async () => {
    fake.hangWebsocket = true;
    config = { ...config, connectTimeoutMs: 1500 };
    const canceled = run();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    canceled.cancel();
    await expect(canceled.promise).rejects.toBeInstanceOf(AttemptAborted);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(fake.prompts).toEqual([]);

    const task = run();
    expect(await task.promise).toHaveLength(1);
    expect(task.previews).toEqual([]);
  });

  it('a websocket that drops mid-prompt: polled, reconnected, and the prompt completes once', async () => {
    fake.stepMs = 50;
    const task = run({ steps: 10 });
    await eventually('a few steps', async () => (task.previews.length >= 2 ? true : undefined), 10_000, 10);
    fake.dropSockets();
    const beforeDrop = task.previews.length;
    expect(await task.promise).toHaveLength(1);
    expect(posts()).toHaveLength(1);
    // Previews resumed: the socket was reopened under the same client id.
    expect(task.previews.length).toBeGreaterThan(beforeDrop);
  });
});

describe('comfyui adapter: a rescued attempt resumes by prompt_id', () => {
  it('shutdown leaves the prompt running; the next attempt follows it without queueing again', async () => {
    fake.stepMs = 50;
    const first = run({ steps: 10 });
    await eventually('prompt running', async () => fake.running(), 10_000, 10);
    first.controller.abort(new AttemptAborted('shutdown'));
    await expect(first.promise).rejects.toBeInstanceOf(AttemptAborted);
    expect(fake.interrupts).toEqual([]);
    const ref = first.record.providerRefs.at(-1)!;

    const second = run({ providerRef: ref, attempt: 2 });
    expect(await second.promise).toHaveLength(1);
    expect(posts()).toHaveLength(1);
    expect(second.record.providerRefs).toEqual([]);
    expect(fake.history.size).toBe(1);
  });

  it('a prompt that finished meanwhile is collected; a ref from another backend or a gone prompt queues anew', async () => {
    const done = run();
    await done.promise;
    const ref = done.record.providerRefs[0]!;
    const again = run({ providerRef: ref, attempt: 2 });
    expect(await again.promise).toHaveLength(1);
    expect(posts()).toHaveLength(1);

    const elsewhere = run({ providerRef: ref.replace('@cred-1', '@cred-2'), attempt: 2 });
    await elsewhere.promise;
    expect(posts()).toHaveLength(2);
    const gone = run({ providerRef: '00000000-0000-4000-8000-000000000000@cred-1', attempt: 2 });
    await gone.promise;
    expect(posts()).toHaveLength(3);
  });
});
