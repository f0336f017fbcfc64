import { shouldCancelUpstream } from '../abort.js';
import { Type } from '@sinclair/typebox';
import { PermanentError, ProviderError, RetryableError } from '../errors.js';
import type { GeneratedImage, ModelInfo, Provider, RunContext, TaskInput } from '../types.js';
import type { HfSpaceConfig } from './config.js';
import {
  awaitCall,
  CallGoneError,
  cancelCall,
  downloadOutput,
  startCall,
  uploadFile,
  type CallRef,
  type FileData,
  type SpaceCall,
} from './gradio.js';

const PROVIDER = 'hf-space';
const GHIBLI_API = 'single_condition_generate_image';

const MODELS: ModelInfo[] = [
  {
    id: 'ghibli',
    kinds: ['img2img'],
    maxWidth: 1024,
    maxHeight: 1024,
    maxSteps: 100,
    description:
      'Ghibli-style image-to-image on the EasyControl Ghibli Space (ZeroGPU). Uses prompt, image, width, ' +
      'height and seed; the Space fixes steps, guidance and strength itself and takes no negative prompt. ' +
      'n > 1 makes n calls with seeds seed, seed+1, ….',
    options: Type.Object({}, { additionalProperties: false }),
  },
];

function parseRef(ref: string | null): CallRef | undefined {
  if (!ref) return undefined;
  try {
    const parsed = JSON.parse(ref) as Partial<CallRef>;
    if (typeof parsed.eventId === 'string' && parsed.consumed !== true) {
      return {
        eventId: parsed.eventId,
        inputPath: typeof parsed.inputPath === 'string' ? parsed.inputPath : '',
        index: typeof parsed.index === 'number' ? parsed.index : 0,
      };
    }
  } catch {
    // a ref of another shape: start afresh
  }
  return undefined;
}

/** The call's stream has ended: a later attempt must start a new call rather than read it again. */
async function markConsumed(ctx: RunContext, ref: CallRef): Promise<void> {
  await ctx.saveProviderRef(JSON.stringify({ ...ref, consumed: true }));
}

function isFileData(value: unknown): value is FileData {
  return typeof value === 'object' && value !== null && typeof (value as FileData).path === 'string';
}

/**
 * Gradio Spaces with Hugging Face tokens. One call per image: upload the input, start the call,
 * save its event id (a later attempt reads the same call's stream instead of spending GPU quota
 * twice), read the stream, download the output file.
 */
export function createHfSpaceProvider(config: HfSpaceConfig): Provider {
  const call: SpaceCall = { space: config.ghibliUrl, apiName: GHIBLI_API, what: `hf-space ghibli` };

  async function startGhibli(input: TaskInput, ctx: RunContext, seed: number, index: number): Promise<CallRef> {
    const image = input.inputImage!;
    ctx.progress('uploading');
    const inputPath = await uploadFile(ctx, call, image.data, image.contentType, 'input.png');
    // The inputs of /single_condition_generate_image in order, as seed 001 names them:
    // prompt, spatial_img, height, width, seed, control_type.
    const data = [
      input.prompt,
      { path: inputPath, meta: { _type: 'gradio.FileData' }, orig_name: 'input.png', mime_type: image.contentType },
      input.height,
      input.width,
      seed,
      'Ghibli',
    ];
    const eventId = await startCall(ctx, call, data);
    const ref: CallRef = { eventId, inputPath, index };
    await ctx.saveProviderRef(JSON.stringify(ref));
    return ref;
  }

  async function finishGhibli(input: TaskInput, ctx: RunContext, ref: CallRef, seed: number): Promise<GeneratedImage> {
    ctx.progress('queued');
    let outputs: unknown[];
    try {
      outputs = await awaitCall(ctx, call, ref.eventId);
    } catch (error) {
      // Shutdown: no cancel, so a call still queued or running may yet be read by the next attempt.
      if (ctx.signal.aborted && shouldCancelUpstream(ctx.signal)) await cancelCall(ctx, call, ref.eventId);
      else if (error instanceof ProviderError) await markConsumed(ctx, ref);
      throw error;
    }
    await markConsumed(ctx, ref);
    const file = outputs[0];
    if (!isFileData(file)) {
      throw new RetryableError('PROVIDER_BAD_OUTPUT', `${call.what}: the result holds no image file`);
    }
    // An echo of the input is no result (seed 001 once passed the input off as one on quota errors).
    if (ref.inputPath !== '' && file.path === ref.inputPath) {
      throw new RetryableError('PROVIDER_BAD_OUTPUT', `${call.what}: the Space returned the input image as its result`);
    }
    ctx.progress('downloading');
    const image = await downloadOutput(ctx, call, file, seed);
    if (input.inputImage && image.data.equals(input.inputImage.data)) {
      throw new RetryableError('PROVIDER_BAD_OUTPUT', `${call.what}: the Space returned the input image as its result`);
    }
    return image;
  }

  return {
    id: PROVIDER,
    credentialPool: 'huggingface',
    models: () => MODELS,
    async run(input, ctx) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (input.model !== 'ghibli') {
        throw new PermanentError('PROVIDER_REJECTED', `hf-space has no model ${input.model}`);
      }
      if (input.kind !== 'img2img' || !input.inputImage) {
        throw new PermanentError('PROVIDER_REJECTED', `${call.what}: needs an input image (kind img2img)`);
      }
      const resume = parseRef(input.providerRef);
      const images: GeneratedImage[] = [];
      for (let index = 0; index < input.n; index++) {
        const seed = input.seed + index;
        let ref = resume?.index === index ? resume : undefined;
        if (ref) {
          try {
            images.push(await finishGhibli(input, ctx, ref, seed));
            continue;
          } catch (error) {
            if (!(error instanceof CallGoneError)) throw error;
            ctx.log.info({ eventId: ref.eventId }, 'the saved Space call is gone; starting a new one');
          }
        }
        ref = await startGhibli(input, ctx, seed, index);
        try {
          images.push(await finishGhibli(input, ctx, ref, seed));
        } catch (error) {
          if (error instanceof CallGoneError) {
            throw new RetryableError('PROVIDER_UNAVAILABLE', error.message);
          }
          throw error;
        }
      }
      return images;
    },
  };
}
