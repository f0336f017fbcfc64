import { setTimeout as sleep } from 'node:timers/promises';
import { RetryableError } from '../errors.js';
import type { RunContext } from '../types.js';
import { getPrediction, TERMINAL_STATUSES, type Prediction } from './api.js';
import type { ReplicateConfig } from './config.js';
import { percentFromLogs } from './progress.js';

/** Progress as Replicate shows it: booting/queued (`starting`), then the sampler's own bar. */
export function reportPredictionProgress(ctx: Pick<RunContext, 'progress'>, prediction: Prediction): void {
  if (prediction.status === 'starting') ctx.progress('starting', 0);
  else if (prediction.status === 'processing') ctx.progress('generating', percentFromLogs(prediction.logs));
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  }
}

/**
 * Poll `GET /predictions/{id}` until the prediction reaches a terminal status, reporting
 * progress on the way. A prediction that vanishes mid-run (404) is a retryable failure.
 */
export async function waitForTerminal(
  ctx: Pick<RunContext, 'fetch' | 'signal' | 'progress'>,
  config: ReplicateConfig,
  token: string,
  prediction: Prediction,
): Promise<Prediction> {
  let current = prediction;
  for (;;) {
    reportPredictionProgress(ctx, current);
    if (TERMINAL_STATUSES.has(current.status)) return current;
    await pause(config.pollIntervalMs, ctx.signal);
    const next = await getPrediction(ctx, config, token, current.id);
    if (next === 'gone') {
      throw new RetryableError('PROVIDER_UNAVAILABLE', `replicate: prediction ${current.id} disappeared while running`);
    }
    current = next;
  }
}
