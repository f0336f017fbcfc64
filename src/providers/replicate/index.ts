import { shouldCancelUpstream } from '../abort.js';
import { PermanentError, RetryableError } from '../errors.js';
import type { GeneratedImage, Provider, RunContext, TaskInput } from '../types.js';
import { cancelPrediction, createPrediction, getPrediction, type Prediction } from './api.js';
import type { ReplicateConfig } from './config.js';
import { errorForFailedPrediction } from './failure.js';
import { buildInput, listModels } from './models.js';
import { downloadOutputs } from './output.js';
import { waitForTerminal } from './poll.js';

/**
 * The prediction an earlier attempt created, when it can still deliver: a 404 (expired,
 * deleted) or a prediction that was canceled or aborted (our own timeout cancels it) means
 * starting again.
 */
async function resumable(
  ctx: RunContext,
  config: ReplicateConfig,
  token: string,
  ref: string,
): Promise<Prediction | undefined> {
  const existing = await getPrediction(ctx, config, token, ref);
  if (existing === 'gone' || existing.status === 'canceled' || existing.status === 'aborted') {
    ctx.log.info(
      { prediction: ref, status: existing === 'gone' ? 'gone' : existing.status },
      'earlier prediction cannot be resumed; creating a new one',
    );
    return undefined;
  }
  ctx.log.info({ prediction: ref, status: existing.status }, 'resuming the earlier prediction');
  return existing;
}

function failureOf(prediction: Prediction): Error {
  switch (prediction.status) {
    case 'failed':
      return errorForFailedPrediction(prediction.id, prediction.error);
    case 'canceled':
      // Not by us (an abort re-throws its own reason): someone stopped it on replicate.com.
      return new PermanentError(
        'PROVIDER_REJECTED',
        `replicate: prediction ${prediction.id} was canceled on Replicate`,
      );
    case 'aborted':
      return new RetryableError(
        'PROVIDER_UNAVAILABLE',
        `replicate: prediction ${prediction.id} was aborted before it started (deadline passed)`,
      );
    default:
      return new RetryableError(
        'PROVIDER_BAD_OUTPUT',
        `replicate: prediction ${prediction.id} ended as ${prediction.status}`,
      );
  }
}

/**
 * Replicate (replicate.com): predictions of official models (`owner/name`) and of pinned
 * versions (`owner/name:version`), with the pool's `replicate` tokens. One task is one
 * prediction; its id is saved as soon as Replicate accepts it, so a rescued task polls it
 * instead of paying for a second one.
 */
export function createReplicateProvider(config: ReplicateConfig): Provider {
  const models = listModels(config.defaultModel);
  return {
    id: 'replicate',
    credentialPool: 'replicate',
    models: () => models,
    async run(input: TaskInput, ctx: RunContext): Promise<GeneratedImage[]> {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const token = ctx.credential?.secret;
      if (!token) throw new PermanentError('PROVIDER_REJECTED', 'replicate: the attempt has no API token');
      const body = buildInput(input);

      let prediction = input.providerRef ? await resumable(ctx, config, token, input.providerRef) : undefined;
      if (!prediction) {
        prediction = await createPrediction(ctx, config, token, input.model, body);
        // Before anything else: from here on, a second create would be a second bill.
        await ctx.saveProviderRef(prediction.id);
      }

      const id = prediction.id;
      try {
        prediction = await waitForTerminal(ctx, config, token, prediction);
      } catch (error) {
        // Aborted: as shouldCancelUpstream says. Polling failed for good: the worker drops the
        // provider_ref of a failed attempt, so nobody would collect (or stop) this prediction.
        if (!ctx.signal.aborted || shouldCancelUpstream(ctx.signal)) {
          const canceled = await cancelPrediction(ctx.fetch, config, token, id);
          ctx.log.info({ prediction: id, canceled }, 'asked Replicate to cancel the prediction');
        }
        throw error;
      }

      const predictTime = prediction.metrics?.predict_time;
      if (typeof predictTime === 'number') ctx.recordPredictTime(predictTime);
      if (prediction.status !== 'succeeded') throw failureOf(prediction);
      ctx.progress('downloading', 100);
      return downloadOutputs(ctx, prediction, input.seed);
    },
  };
}
