import { setTimeout as sleep } from 'node:timers/promises';
import { RetryableError } from '../errors.js';
import { decodeImage, providerFetch, readBodyLimited, DEFAULT_IMAGE_MAX_BYTES } from '../http.js';
import type { GeneratedImage, ModelInfo, Provider, RunContext, TaskInput } from '../types.js';
import type { HuggingFaceConfig } from './config.js';
import { huggingFaceError, parseLoading } from './errors.js';
import { HuggingFaceOptionsSchema, readScheduler } from './options.js';

const PROVIDER = 'huggingface';

function modelInfo(id: string, isDefault: boolean): ModelInfo {
  return {
    id,
    kinds: ['txt2img'],
    maxWidth: 2048,
    maxHeight: 2048,
    maxSteps: 100,
    description:
      `${isDefault ? 'Default. ' : ''}Text-to-image through the Hugging Face router (hf-inference). ` +
      'n > 1 makes n calls with seeds seed, seed+1, …; a model that is not served there answers 404.',
    options: HuggingFaceOptionsSchema,
  };
}

/**
 * The text-to-image body: `inputs` and snake_case `parameters`, the names of the current
 * `TextToImageParameters` (huggingface_hub `inference/_generated/types/text_to_image.py`,
 * generated from `@huggingface/tasks`; older versions had `target_size` instead of width/height).
 * huggingface.js's hf-inference helper passes these args through unchanged.
 */
function requestBody(input: TaskInput, seed: number): string {
  const scheduler = readScheduler(input.options);
  return JSON.stringify({
    inputs: input.prompt,
    parameters: {
      ...(input.negativePrompt ? { negative_prompt: input.negativePrompt } : {}),
      width: input.width,
      height: input.height,
      num_inference_steps: input.steps,
      guidance_scale: input.guidance,
      seed,
      ...(scheduler ? { scheduler } : {}),
    },
  });
}

/** Sleep that ends early with the signal's own reason (cancel, timeout, shutdown). */
async function waitOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  }
}

/**
 * Hugging Face Inference through the router: `POST {base}/hf-inference/models/{model}` answers
 * image bytes. The call is synchronous, so there is no request id to save or cancel: an abort
 * closes the connection, which is all the router offers.
 */
export function createHuggingFaceProvider(config: HuggingFaceConfig): Provider {
  const models = config.models.map((id) => modelInfo(id, id === config.defaultModel));

  async function generateOne(input: TaskInput, ctx: RunContext, seed: number): Promise<GeneratedImage> {
    const what = `huggingface ${input.model}`;
    const url = `${config.baseUrl}/hf-inference/models/${input.model}`;
    const body = requestBody(input, seed);
    for (let loads = 0; ; loads++) {
      const response = await providerFetch(ctx, url, {
        what,
        method: 'POST',
        headers: {
          authorization: `Bearer ${ctx.credential?.secret ?? ''}`,
          'content-type': 'application/json',
          // As huggingface.js asks for text-to-image: the bytes, not JSON.
          accept: 'image/png',
        },
        body,
      });
      if (response.ok) {
        return decodeImage(await readBodyLimited(ctx, response, DEFAULT_IMAGE_MAX_BYTES, what), seed, what);
      }
      if (response.status === 503) {
        const text = (await readBodyLimited(ctx, response, 64 * 1024, what)).toString('utf8');
        const loading = parseLoading(text);
        if (!loading) {
          throw await huggingFaceError(new Response(text, { status: 503, headers: response.headers }), what);
        }
        if (loads >= config.loadingRetries) {
          throw new RetryableError(
            'PROVIDER_MODEL_LOADING',
            `${what}: still loading after ${loads + 1} answers (${loading.error})`,
          );
        }
        const waitMs = Math.min(Math.max(loading.estimatedTimeMs, 1000), config.loadingWaitMaxMs);
        ctx.log.info({ waitMs, model: input.model }, 'huggingface model loading; waiting');
        ctx.progress('model loading');
        await waitOrAbort(waitMs, ctx.signal);
        continue;
      }
      throw await huggingFaceError(response, what);
    }
  }

  return {
    id: PROVIDER,
    credentialPool: 'huggingface',
    models: () => models,
    async run(input, ctx) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const images: GeneratedImage[] = [];
      // One call per image: hf-inference text-to-image makes one image per request.
      for (let index = 0; index < input.n; index++) {
        ctx.progress('generating', (index / input.n) * 100);
        images.push(await generateOne(input, ctx, input.seed + index));
      }
      ctx.progress('generating', 100);
      return images;
    },
  };
}
