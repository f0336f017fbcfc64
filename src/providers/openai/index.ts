import { PermanentError, RetryableError } from '../errors.js';
import { decodeImage, downloadImage, providerFetch, readJson } from '../http.js';
import type { GeneratedImage, ModelInfo, Provider, RunContext, TaskInput } from '../types.js';
import type { OpenAIConfig } from './config.js';
import { openAIFailure } from './errors.js';
import { findOpenAIModel, OPENAI_MODELS } from './models.js';
import { buildOpenAIRequest } from './request.js';

/** One entry of `ImagesResponse.data` (openai-node `Image`). */
interface OpenAIImage {
  b64_json?: unknown;
  url?: unknown;
  revised_prompt?: unknown;
}

const WHAT = 'openai';
const ANSWER_MAX_BYTES = 200 * 1024 * 1024;

/** The configured default first: a task that names no model gets `models()[0]`. */
function orderedModels(defaultModel: string): ModelInfo[] {
  const models = OPENAI_MODELS.map((model) => model.info);
  return [...models.filter((m) => m.id === defaultModel), ...models.filter((m) => m.id !== defaultModel)];
}

function headers(config: OpenAIConfig, secret: string, json: boolean): Record<string, string> {
  return {
    authorization: `Bearer ${secret}`,
    accept: 'application/json',
    ...(json ? { 'content-type': 'application/json' } : {}),
    ...(config.organization ? { 'openai-organization': config.organization } : {}),
    ...(config.project ? { 'openai-project': config.project } : {}),
  };
}

async function imageFrom(ctx: RunContext, entry: OpenAIImage, seed: number): Promise<GeneratedImage> {
  if (typeof entry.b64_json === 'string' && entry.b64_json !== '') {
    return decodeImage(Buffer.from(entry.b64_json, 'base64'), seed, WHAT);
  }
  if (typeof entry.url === 'string' && /^https?:\/\//.test(entry.url)) {
    return downloadImage(ctx, entry.url, seed, WHAT);
  }
  throw new RetryableError('PROVIDER_BAD_OUTPUT', `${WHAT}: an answer entry has neither b64_json nor url`);
}

/**
 * OpenAI Images: `POST /images/generations` for txt2img, `POST /images/edits` for img2img.
 * The calls are synchronous (the image comes in the answer), so there is no request id to
 * resume and nothing to cancel upstream: on abort the connection is closed, and a retried
 * attempt asks again. OpenAI has no seed; `seed` on the results is the task's, not a replay key.
 */
export function createOpenAIProvider(config: OpenAIConfig): Provider {
  const models = orderedModels(config.defaultModel);
  return {
    id: 'openai',
    credentialPool: 'openai',
    models: () => models,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const model = findOpenAIModel(input.model);
      if (!model) throw new PermanentError('UNKNOWN_MODEL', `${WHAT}: no model ${input.model}`);
      if (!ctx.credential) {
        throw new PermanentError('PROVIDER_CREDENTIAL_MISSING', `${WHAT}: run without an API key from the openai pool`);
      }
      const request = buildOpenAIRequest(model, input);
      const json = request.path === '/images/generations';
      ctx.progress('generating', 0);
      const response = await providerFetch(ctx, `${config.baseUrl}${request.path}`, {
        what: WHAT,
        method: 'POST',
        headers: headers(config, ctx.credential.secret, json),
        body: json ? JSON.stringify(request.body) : request.body,
      });
      if (!response.ok) {
        const failure = await openAIFailure(response, WHAT);
        // An abort while the error body was arriving is the abort, not that failure.
        if (ctx.signal.aborted) throw ctx.signal.reason;
        throw failure;
      }
      ctx.log.debug({ requestId: response.headers.get('x-request-id'), model: model.info.id }, 'openai answered');
      // Ten base64 PNGs of 1536x1024 can pass 50 MB; the limit only stops a runaway answer.
      const answer = await readJson<{ data?: unknown }>(ctx, response, WHAT, ANSWER_MAX_BYTES);
      const data = Array.isArray(answer?.data) ? (answer.data as OpenAIImage[]) : [];
      if (data.length === 0) throw new RetryableError('PROVIDER_BAD_OUTPUT', `${WHAT}: the answer holds no images`);
      if (data.length !== input.n) {
        ctx.log.warn({ asked: input.n, got: data.length }, 'openai returned a different number of images');
      }
      ctx.progress('downloading', 50);
      const images: GeneratedImage[] = [];
      for (const [index, entry] of data.entries()) {
        if (typeof entry?.revised_prompt === 'string') {
          ctx.log.debug({ index, revisedPrompt: entry.revised_prompt }, 'openai revised the prompt');
        }
        images.push(await imageFrom(ctx, entry ?? {}, input.seed + index));
        ctx.progress('downloading', 50 + (50 * (index + 1)) / data.length);
      }
      return images;
    },
  };
}
