import { randomUUID } from 'node:crypto';
import { shouldCancelUpstream } from '../abort.js';
import { CredentialError, PermanentError, RetryableError } from '../errors.js';
import { decodeImage } from '../http.js';
import { BackendUrlError, parseBackend, type Backend } from '../self-hosted/backend.js';
import type { GeneratedImage, Provider, RunContext, TaskInput } from '../types.js';
import { queuePrompt, readHistory, readQueue, uploadImage, viewImage, type HistoryEntry } from './api.js';
import { stopPrompt } from './cancel.js';
import type { ComfyUIConfig } from './config.js';
import { followPrompt, PromptWatch } from './follow.js';
import { listModels } from './models.js';
import { EASEL_CLIENT_ID } from './socket.js';
import { fillTemplate, type TemplateValues, type WorkflowTemplate } from './template.js';

/**
 * The provider ref is `<prompt_id>@<credential id>`: a prompt lives on one backend, and a
 * rescued attempt may have been handed another one, where that id means nothing.
 */
const refOf = (promptId: string, credentialId: string) => `${promptId}@${credentialId}`;

function backendOf(ctx: RunContext): Backend {
  const secret = ctx.credential?.secret;
  if (!secret) throw new PermanentError('PROVIDER_REJECTED', 'comfyui: the attempt has no backend (COMFYUI_URLS)');
  try {
    return parseBackend(secret);
  } catch (error) {
    // Disables this credential with the reason; the task goes on to another backend.
    if (error instanceof BackendUrlError)
      throw new CredentialError('PROVIDER_CREDENTIAL_REJECTED', `comfyui: ${error.message}`);
    throw error;
  }
}

/** The earlier attempt's prompt, when it is on this backend and still queued, running or finished. */
async function resumable(ctx: RunContext, backend: Backend, ref: string): Promise<string | undefined> {
  const [promptId, credentialId] = ref.split('@');
  if (!promptId || credentialId !== ctx.credential?.id) {
    ctx.log.info({ ref }, 'the earlier ComfyUI prompt is on another backend; queueing a new one');
    return undefined;
  }
  if (await readHistory(ctx, backend, promptId)) return promptId;
  const queue = await readQueue(ctx, backend);
  if (queue.running.includes(promptId) || queue.pending.includes(promptId)) return promptId;
  ctx.log.info({ prompt: promptId }, 'the earlier ComfyUI prompt is gone; queueing a new one');
  return undefined;
}

async function valuesFor(
  ctx: RunContext,
  backend: Backend,
  config: ComfyUIConfig,
  input: TaskInput,
): Promise<TemplateValues> {
  const checkpoint = input.options.checkpoint;
  const values: TemplateValues = {
    prompt: input.prompt,
    negative_prompt: input.negativePrompt ?? '',
    width: input.width,
    height: input.height,
    seed: input.seed,
    steps: input.steps,
    cfg: input.guidance,
    denoise: input.kind === 'img2img' ? (input.strength ?? 0.75) : 1,
    batch_size: input.n,
    model: typeof checkpoint === 'string' ? checkpoint : config.defaultCheckpoint,
  };
  if (input.kind === 'img2img') {
    if (!input.inputImage) throw new PermanentError('PROVIDER_REJECTED', 'comfyui: img2img without an input image');
    ctx.progress('uploading', 0);
    values.image = await uploadImage(ctx, backend, {
      data: input.inputImage.data,
      contentType: input.inputImage.contentType,
      // One name per task: a retry overwrites its own upload, never another task's.
      filename: `easel-${input.taskId}.png`,
    });
  }
  return values;
}

/** Output images (`type: output`; temp previews only when there is nothing else), last `n` in node order. */
async function collectImages(
  ctx: RunContext,
  backend: Backend,
  promptId: string,
  entry: HistoryEntry,
  input: TaskInput,
): Promise<GeneratedImage[]> {
  const all = Object.entries(entry.outputs ?? {})
    .sort(([a], [b]) => Number(a) - Number(b) || a.localeCompare(b))
    .flatMap(([, output]) => output.images ?? [])
    .filter((image) => typeof image?.filename === 'string');
  const saved = all.filter((image) => image.type === 'output');
  const chosen = (saved.length > 0 ? saved : all).slice(-input.n);
  if (chosen.length === 0) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `comfyui: prompt ${promptId} finished without an image output`);
  }
  ctx.progress('downloading', 100);
  const images: GeneratedImage[] = [];
  for (const image of chosen) {
    const data = await viewImage(ctx, backend, {
      filename: image.filename,
      subfolder: image.subfolder ?? '',
      type: image.type ?? 'output',
    });
    images.push(await decodeImage(data, input.seed, `comfyui: ${image.filename}`));
  }
  return images;
}

/**
 * ComfyUI on the user's own GPU servers, each a credential of the `comfyui` pool. A task is
 * one prompt: the model's workflow template filled in, queued under Easel's client id, followed
 * over the websocket, and collected from `/history` and `/view`.
 */
export function createComfyUIProvider(config: ComfyUIConfig): Provider {
  const models = listModels(config);
  return {
    id: 'comfyui',
    credentialPool: 'comfyui',
    models: () => models,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const backend = backendOf(ctx);
      const credentialId = ctx.credential!.id;
      const workflow = config.workflows.find((candidate) => candidate.name === input.model);
      const template: WorkflowTemplate | undefined = workflow?.[input.kind];
      if (!template) {
        throw new PermanentError('PROVIDER_REJECTED', `comfyui: no ${input.kind} workflow named "${input.model}"`);
      }

      const watch = new PromptWatch(backend, config);
      let promptId: string | undefined;
      // Whether ComfyUI holds the prompt: only then is there anything to stop after a failure.
      let queuedThere = false;
      try {
        promptId = input.providerRef ? await resumable(ctx, backend, input.providerRef) : undefined;
        if (promptId) {
          queuedThere = true;
          await watch.watch(promptId, ctx.signal);
        } else {
          const graph = fillTemplate(template, await valuesFor(ctx, backend, config, input));
          const chosen = randomUUID();
          // Saved before queueing: a worker dying right after ComfyUI accepted the prompt leaves
          // a ref the next attempt finds, instead of a second prompt on the GPU.
          await ctx.saveProviderRef(refOf(chosen, credentialId));
          // Subscribed before queueing, so the first messages are not missed.
          await watch.watch(chosen, ctx.signal);
          promptId = chosen;
          const queued = await queuePrompt(ctx, backend, {
            prompt: graph,
            client_id: EASEL_CLIENT_ID,
            prompt_id: chosen,
          });
          queuedThere = true;
          if (queued.promptId !== chosen) {
            // A server older than caller-chosen ids picked its own.
            promptId = queued.promptId;
            await ctx.saveProviderRef(refOf(promptId, credentialId));
            await watch.watch(promptId, ctx.signal);
          }
          ctx.log.info({ prompt: promptId, backend: backend.baseUrl }, 'queued the ComfyUI prompt');
        }
        const entry = await followPrompt(ctx, backend, config, promptId, watch);
        return await collectImages(ctx, backend, promptId, entry, input);
      } catch (error) {
        // As shouldCancelUpstream says on abort (an abort during `POST /prompt` may still have
        // queued it); after a failure of our own, nobody would collect the prompt, so it should
        // not hold the GPU either.
        const stop = ctx.signal.aborted ? shouldCancelUpstream(ctx.signal) : queuedThere;
        if (promptId && stop) {
          const stopped = await stopPrompt(ctx.fetch, backend, promptId, ctx.log);
          ctx.log.info({ prompt: promptId, stopped }, 'stopped the ComfyUI prompt');
        }
        throw error;
      } finally {
        watch.close();
      }
    },
  };
}
