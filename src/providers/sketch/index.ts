import { setTimeout as sleep } from 'node:timers/promises';
import { CredentialError, PermanentError, RateLimitedError, RetryableError, type ProviderErrorClass } from '../errors.js';
import type { GeneratedImage, ModelInfo, Provider, RunContext, TaskInput } from '../types.js';
import { parseSketchOptions } from './options.js';
import { renderSketch } from './render.js';

const MODELS: ModelInfo[] = [
  {
    id: 'sketch-v1',
    kinds: ['txt2img', 'img2img'],
    maxWidth: 2048,
    maxHeight: 2048,
    maxSteps: 150,
    description: 'Offline, deterministic abstract sketches: same prompt, seed and size give the same PNG.',
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
 * The built-in offline provider. It walks through `steps` like a sampler would (reporting
 * progress, honouring the abort signal), optionally taking `delay_ms` and failing on demand,
 * then renders one PNG per image with seeds seed, seed+1, …
 */
export function createSketchProvider(): Provider {
  return {
    id: 'sketch',
    models: () => MODELS,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      const options = parseSketchOptions(input.options);
      throwIfAborted(ctx.signal);
      const perStepMs = options.delayMs / input.steps;
      for (let step = 0; step < input.steps; step++) {
        ctx.progress('generating', (step / input.steps) * 100);
        if (perStepMs > 0) {
          try {
            await sleep(perStepMs, undefined, { signal: ctx.signal });
          } catch {
            throwIfAborted(ctx.signal);
          }
        }
      }
      throwIfAborted(ctx.signal);
      if (options.fail && (options.failAttempts === undefined || input.attempt <= options.failAttempts)) {
        throw injectedFailure(options.fail, options.retryAfterMs);
      }
      ctx.progress('encoding', 100);
      return Promise.all(
        Array.from({ length: input.n }, async (_, index) => {
          const seed = (input.seed + index) >>> 0;
          const data = await renderSketch({ prompt: input.prompt, model: input.model, seed, width: input.width, height: input.height });
          return { data, contentType: 'image/png', width: input.width, height: input.height, seed };
        }),
      );
    },
  };
}
