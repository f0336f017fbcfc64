import sharp from 'sharp';
import { CredentialError, PermanentError } from '../errors.js';
import { decodeImage, providerFetch, readBodyLimited } from '../http.js';
import { NO_TOKEN_CACHE, type TokenCache } from '../token-cache.js';
import type { GeneratedImage, ModelInfo, Provider, RunContext, TaskInput } from '../types.js';
import type { NovelAIConfig } from './config.js';
import { novelAIFailure } from './errors.js';
import { findNovelAIModel, NOVELAI_MODELS } from './models.js';
import { buildNovelAIRequest, type NovelAIRequest } from './request.js';
import { bearerFor, type Bearer, type SessionDeps } from './session.js';
import { unpackImages } from './zip.js';
import { NovelAISecretError, parseNovelAISecret } from './secret.js';

const WHAT = 'novelai';
/** Eight 2048×2048 PNGs fit well under this; it only stops a runaway answer. */
const ANSWER_MAX_BYTES = 200 * 1024 * 1024;

export interface NovelAIDeps {
  /** Where access tokens from email + password sign-ins are kept between attempts. */
  tokens?: TokenCache;
}

function orderedModels(defaultModel: string): ModelInfo[] {
  const models = NOVELAI_MODELS.map((model) => model.info);
  return [...models.filter((m) => m.id === defaultModel), ...models.filter((m) => m.id !== defaultModel)];
}

/** NovelAI wants the input image at exactly the requested size; the web client crops it to fit the same way. */
async function fitInputImage(input: TaskInput): Promise<TaskInput> {
  const image = input.inputImage;
  if (!image || (image.width === input.width && image.height === input.height)) return input;
  const data = await sharp(image.data).resize(input.width, input.height, { fit: 'cover' }).png().toBuffer();
  return { ...input, inputImage: { data, contentType: 'image/png', width: input.width, height: input.height } };
}

async function generate(
  config: NovelAIConfig,
  ctx: RunContext,
  request: NovelAIRequest,
  bearer: string,
): Promise<Response> {
  return providerFetch(ctx, `${config.imageBaseUrl}/ai/generate-image`, {
    what: WHAT,
    method: 'POST',
    headers: {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      accept: 'application/x-zip-compressed, application/octet-stream, application/json',
    },
    body: JSON.stringify(request),
  });
}

/**
 * NovelAI image generation: `POST {image host}/ai/generate-image`, answered with a ZIP of
 * PNGs once the images are done. The call is synchronous: there is no request id to resume
 * and nothing to cancel upstream but the connection, which is closed on abort. Accounts sign
 * in at the account host with their Argon2id access key; see session.ts.
 */
export function createNovelAIProvider(config: NovelAIConfig, deps: NovelAIDeps = {}): Provider {
  const models = orderedModels(config.defaultModel);
  const session: SessionDeps = {
    apiBaseUrl: config.apiBaseUrl,
    tokens: deps.tokens ?? NO_TOKEN_CACHE,
    concurrentWaitMs: config.concurrentWaitMs,
  };
  return {
    id: 'novelai',
    credentialPool: 'novelai',
    signsIn: true,
    checkSecret(secret) {
      try {
        parseNovelAISecret(secret);
        return undefined;
      } catch (error) {
        if (error instanceof NovelAISecretError) return error.message;
        throw error;
      }
    },
    models: () => models,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const model = findNovelAIModel(input.model);
      if (!model) throw new PermanentError('UNKNOWN_MODEL', `${WHAT}: no model ${input.model}`);
      const credential = ctx.credential;
      if (!credential) {
        throw new PermanentError(
          'PROVIDER_CREDENTIAL_MISSING',
          `${WHAT}: run without a credential from the novelai pool`,
        );
      }
      const request = buildNovelAIRequest(model, await fitInputImage(input));
      ctx.progress('signing_in', 0);
      let bearer: Bearer = await bearerFor(credential, ctx, session);
      ctx.progress('generating', 5);
      let response = await generate(config, ctx, request, bearer.token);
      if (!response.ok) {
        let failure = await novelAIFailure(response, WHAT, config.concurrentWaitMs);
        if (ctx.signal.aborted) throw ctx.signal.reason;
        // A cached token refused before its time (revoked, password changed): sign in once more.
        if (failure instanceof CredentialError && bearer.renewable) {
          ctx.log.warn({ credential: credential.label }, 'novelai: cached token refused; signing in again');
          bearer = await bearerFor(credential, ctx, session, { skipCache: true });
          response = await generate(config, ctx, request, bearer.token);
          failure = response.ok ? failure : await novelAIFailure(response, WHAT, config.concurrentWaitMs);
        }
        if (!response.ok) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          throw failure;
        }
      }
      const body = await readBodyLimited(ctx, response, ANSWER_MAX_BYTES, WHAT);
      ctx.progress('decoding', 90);
      const files = unpackImages(body, WHAT);
      if (files.length !== input.n) {
        ctx.log.warn({ asked: input.n, got: files.length }, 'novelai returned a different number of images');
      }
      const images: GeneratedImage[] = [];
      for (const [index, file] of files.entries()) images.push(await decodeImage(file, input.seed + index, WHAT));
      return images;
    },
  };
}
