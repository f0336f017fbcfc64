import { setTimeout as sleep } from 'node:timers/promises';
import {
  CredentialError,
  PermanentError,
  RateLimitedError,
  RetryableError,
  type ProviderErrorClass,
} from '../errors.js';
import type { GeneratedImage, ModelInfo, Provider, RunContext, TaskInput } from '../types.js';
import { parseSketchOptions, SketchOptionsSchema } from './options.js';
import { blendInto, inputPixels } from './blend.js';
import { encodeRgbPng } from './png.js';
import { renderPixels, renderSketch, type SketchSpec } from './render.js';

const MODELS: ModelInfo[] = [
  {
    id: 'sketch-v1',
    kinds: ['txt2img', 'img2img'],
    maxWidth: 2048,
    maxHeight: 2048,
    maxSteps: 150,
    description: 'Offline, deterministic abstract sketches: same prompt, seed and size give the same PNG.',
    options: SketchOptionsSchema,
  },
];

function injectedFailure(errorClass: ProviderErrorClass, retryAfterMs: number | undefined): Error {
  switch (errorClass) {
    case 'retryable':
      return new RetryableError('PROVIDER_UNAVAILABLE', 'sketch: injected retryable failure');
    case 'rate_limited':
      return new RateLimitedError('sketch: injected rate limit', retryAfterMs);
    case 'credential':
      return new CredentialError('PROVIDER_CREDENTIAL_REJECTED', 'sketch: injected credential failure');
    case 'permanent':
      return new PermanentError('PROVIDER_REJECTED', 'sketch: injected permanent failure');
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (!signal.aborted) return;
  throw signal.reason instanceof Error ? signal.reason : Object.assign(new Error('aborted'), { name: 'AbortError' });
}

/**
 * Sleep until `deadline` (a performance.now() time). Loops because a Node timer can fire a
 * little early (it counts from the event loop's cached clock), and delay_ms is a promise of at
 * least that long. On abort, rejects with the reason the worker gave rather than timers' own.
 */
async function sleepUntil(deadline: number, signal: AbortSignal): Promise<void> {
  for (let ms = deadline - performance.now(); ms > 0; ms = deadline - performance.now()) {
    try {
      await sleep(ms, undefined, { signal });
    } catch (error) {
      throwIfAborted(signal);
      throw error;
    }
  }
}

/**
 * txt2img: the sketch. img2img: the sketch mixed over the input by `strength`, so the output
 * visibly derives from the input and strength 1 gives exactly the txt2img picture.
 */
async function renderImage(spec: SketchSpec, input: TaskInput): Promise<Buffer> {
  if (!input.inputImage) return renderSketch(spec);
  const under = await inputPixels(input.inputImage, spec.width, spec.height);
  return encodeRgbPng(blendInto(renderPixels(spec), under, input.strength ?? 1), spec.width, spec.height);
}

/**
 * The built-in offline provider. It walks through `steps` like a sampler would (reporting
 * progress, honouring the abort signal), optionally taking `delay_ms` and failing on demand,
 * then renders one PNG per image with seeds seed, seed+1, …
 */
export function createSketchProvider(): Provider {
  return {
    id: 'sketch',
    models: () => MODELS,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      // Aborted first: a task cancelled while queued should not fail for its options.
      throwIfAborted(ctx.signal);
      const options = parseSketchOptions(input.options);
      const steps = Math.max(1, input.steps);
      // Each step sleeps to a deadline on one clock rather than for delay/steps: timer overshoot
      // would otherwise pile up over 150 steps, and the total stays delay_ms however many steps.
      const started = performance.now();
      ctx.progress('generating', 0);
      for (let step = 1; step <= steps; step++) {
        if (options.delayMs > 0) await sleepUntil(started + (options.delayMs * step) / steps, ctx.signal);
        throwIfAborted(ctx.signal);
        ctx.progress('generating', (step / steps) * 100);
      }
      if (options.fail && (options.failAttempts === undefined || input.attempt <= options.failAttempts)) {
        throw injectedFailure(options.fail, options.retryAfterMs);
      }
      ctx.progress('encoding', 100);
      // One image at a time: n 2048² rasters at once would hold n × 12 MB, and an abort can land
      // between images. Many tasks in flight keep the thread pool busy anyway.
      const images: GeneratedImage[] = [];
      for (let index = 0; index < input.n; index++) {
        throwIfAborted(ctx.signal);
        const seed = input.seed + index;
        const spec = { prompt: input.prompt, model: input.model, seed, width: input.width, height: input.height };
        images.push({
          data: await renderImage(spec, input),
          contentType: 'image/png',
          width: input.width,
          height: input.height,
          seed,
        });
      }
      // An encode cannot be stopped midway, so an abort during the last one is noticed here.
      throwIfAborted(ctx.signal);
      return images;
    },
  };
}
