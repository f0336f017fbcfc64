import { checkOneImageTask } from '../check-task.js';
import { PermanentError, RetryableError } from '../errors.js';
import { decodeImage, downloadImage, providerFetch, readJson } from '../http.js';
import type { GeneratedImage, Provider, RunContext, TaskInput } from '../types.js';
import type { ArkConfig } from './config.js';
import { arkFailure } from './errors.js';
import { ARK_MODELS, arkSeed, findArkModel, type ArkModel } from './models.js';

const WHAT = 'ark';
/** Base64 4K images are large; the limit only stops a runaway answer. */
const ANSWER_MAX_BYTES = 200 * 1024 * 1024;

const invalid = (code: string, message: string) => new PermanentError(code, `${WHAT}: ${message}`);

/** The JSON body of `POST /images/generations`; the input image goes inline as a data URL. */
export function buildArkBody(model: ArkModel, apiModel: string, input: TaskInput): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: apiModel,
    prompt: input.prompt,
    ...model.fields(input, arkSeed(input.seed)),
    response_format: input.options.response_format ?? 'b64_json',
  };
  if (input.options.watermark !== undefined) body.watermark = input.options.watermark;
  if (input.kind === 'img2img' && input.inputImage) {
    const { data, contentType } = input.inputImage;
    body.image = `data:${contentType};base64,${data.toString('base64')}`;
  }
  return body;
}

async function imageFrom(ctx: RunContext, entry: Record<string, unknown>, seed: number): Promise<GeneratedImage> {
  if (typeof entry.b64_json === 'string' && entry.b64_json !== '') {
    return decodeImage(Buffer.from(entry.b64_json, 'base64'), seed, WHAT);
  }
  if (typeof entry.url === 'string' && /^https?:\/\//i.test(entry.url))
    return downloadImage(ctx, entry.url, seed, WHAT);
  // Seedream 4.x reports a failed image of a set in place, as `error`.
  const error = entry.error as { code?: unknown; message?: unknown } | undefined;
  if (error && typeof error === 'object') {
    throw new RetryableError(
      'PROVIDER_BAD_OUTPUT',
      `${WHAT}: an image failed: ${String(error.code ?? '')} ${String(error.message ?? '')}`.trim(),
    );
  }
  throw new RetryableError('PROVIDER_BAD_OUTPUT', `${WHAT}: an answer entry has neither b64_json nor url`);
}

/**
 * Volcengine Ark (火山方舟) images: the OpenAI-like `POST /api/v3/images/generations` with a
 * Bearer API key from the `ark` pool. Synchronous: the image comes in the answer, so there is
 * nothing to resume or cancel upstream; on abort the connection is closed.
 */
export function createArkProvider(config: ArkConfig): Provider {
  const models = ARK_MODELS.map((model) => model.info);
  return {
    id: 'ark',
    credentialPool: 'ark',
    models: () => models,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const model = findArkModel(input.model);
      if (!model) throw invalid('UNKNOWN_MODEL', `no model ${input.model}`);
      if (!ctx.credential) throw invalid('PROVIDER_CREDENTIAL_MISSING', 'run without an API key from the ark pool');
      checkOneImageTask(WHAT, model, input);
      const apiModel = config.modelIds[model.info.id] ?? model.apiModel;
      ctx.progress('generating', 0);
      const response = await providerFetch(ctx, `${config.baseUrl}/images/generations`, {
        what: WHAT,
        method: 'POST',
        headers: {
          authorization: `Bearer ${ctx.credential.secret}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(buildArkBody(model, apiModel, input)),
      });
      if (!response.ok) {
        const failure = await arkFailure(response, WHAT);
        if (ctx.signal.aborted) throw ctx.signal.reason;
        throw failure;
      }
      const answer = await readJson<{ data?: unknown; error?: unknown }>(ctx, response, WHAT, ANSWER_MAX_BYTES);
      const data = Array.isArray(answer?.data) ? (answer.data as Array<Record<string, unknown> | null>) : [];
      if (data.length === 0) throw new RetryableError('PROVIDER_BAD_OUTPUT', `${WHAT}: the answer holds no images`);
      ctx.progress('downloading', 50);
      const images: GeneratedImage[] = [];
      const seed = arkSeed(input.seed);
      for (const [index, entry] of data.entries()) {
        images.push(await imageFrom(ctx, entry ?? {}, seed + index));
        ctx.progress('downloading', 50 + (50 * (index + 1)) / data.length);
      }
      return images;
    },
  };
}
