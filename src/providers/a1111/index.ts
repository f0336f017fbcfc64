import { shouldCancelUpstream } from '../abort.js';
import { CredentialError } from '../errors.js';
import { BackendUrlError, parseBackend, type Backend } from '../self-hosted/backend.js';
import type { GeneratedImage, ModelInfo, Provider, RunContext, TaskInput } from '../types.js';
import { interruptJob, postGeneration, readProgress } from './api.js';
import type { A1111Config } from './config.js';
import { A1111OptionsSchema } from './options.js';
import { readImages } from './output.js';
import { buildGenerationBody } from './request.js';

function listModels(config: A1111Config): ModelInfo[] {
  return config.models.map((id) => ({
    id,
    kinds: ['txt2img', 'img2img'],
    maxWidth: config.maxSize,
    maxHeight: config.maxSize,
    maxSteps: 150,
    maxN: 8,
    description:
      id === 'default'
        ? 'Whatever checkpoint each AUTOMATIC1111 / Forge server has loaded.'
        : `Checkpoint ${id} on the AUTOMATIC1111 / Forge servers.`,
    options: A1111OptionsSchema,
  }));
}

function backendOf(ctx: RunContext): Backend {
  const secret = ctx.credential?.secret;
  if (!secret) throw new CredentialError('PROVIDER_CREDENTIAL_REJECTED', 'a1111: the attempt has no server URL');
  try {
    return parseBackend(secret);
  } catch (error) {
    if (error instanceof BackendUrlError)
      throw new CredentialError('PROVIDER_CREDENTIAL_REJECTED', `a1111: ${error.message}`);
    throw error;
  }
}

/**
 * Polls the server's progress while the generation request is in flight. The WebUI's progress
 * is server-wide (one job at a time, serialized by its queue lock); it is this task's because a
 * backend credential runs one Easel task at a time. A human using the same WebUI meanwhile
 * would show up in it: see docs/providers/a1111.md.
 */
function followProgress(ctx: RunContext, backend: Backend, intervalMs: number): () => void {
  let stopped = false;
  let lastPreviewKey: string | undefined;
  // The WebUI answers 0 once its job is done, before the generation answer arrives (and while
  // it still loads a checkpoint): progress only moves forward.
  let highest = 0;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    const snapshot = await readProgress(ctx, backend);
    if (stopped) return;
    if (snapshot) {
      const fresh = snapshot.previewKey !== undefined && snapshot.previewKey !== lastPreviewKey;
      if (fresh) lastPreviewKey = snapshot.previewKey;
      highest = Math.max(highest, snapshot.progress * 100);
      ctx.progress('generating', highest, fresh ? snapshot.preview : undefined);
    }
    timer = setTimeout(() => void poll(), intervalMs);
  };
  timer = setTimeout(() => void poll(), intervalMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * AUTOMATIC1111 WebUI, Forge and SD.Next through their `/sdapi/v1` API, on the user's own GPU
 * servers. Each server is a credential of pool `a1111` whose secret is its URL: the claim picks
 * a server with a free slot, and a server that does not answer rests while others work.
 */
export function createA1111Provider(config: A1111Config): Provider {
  const models = listModels(config);
  return {
    id: 'a1111',
    credentialPool: 'a1111',
    models: () => models,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const backend = backendOf(ctx);
      const what = `a1111 ${backend.baseUrl}`;
      const path = input.kind === 'img2img' ? '/sdapi/v1/img2img' : '/sdapi/v1/txt2img';
      ctx.progress('generating', 0);
      const stopProgress = followProgress(ctx, backend, config.progressIntervalMs);
      let answer: unknown;
      try {
        answer = await postGeneration(ctx, backend, path, buildGenerationBody(input), config.unreachableCooldownMs);
      } catch (error) {
        // The WebUI keeps generating after its client goes away; cancel and timeout stop it.
        // There is no job id to resume, so a shutdown leaves it to finish on its own.
        if (ctx.signal.aborted && shouldCancelUpstream(ctx.signal)) {
          const interrupted = await interruptJob(ctx.fetch, backend);
          ctx.log.info({ backend: backend.baseUrl, interrupted }, 'asked the server to interrupt the job');
        }
        throw error;
      } finally {
        stopProgress();
      }
      ctx.progress('decoding', 100);
      return readImages(answer, input.n, input.seed, what);
    },
  };
}
