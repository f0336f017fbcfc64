import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimitedError, RetryableError } from '../errors.js';
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
 * Consecutive failed polls tolerated before giving up. The worker forgets the prediction when
 * the attempt fails this way, so a blip on a GET must not turn into a second paid prediction;
 * replicate-javascript likewise retries GETs on 429 and 5xx (`lib/util.js`).
 */
export const POLL_RETRIES = 5;
const POLL_BACKOFF_MAX_MS = 10_000;

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
  let failures = 0;
  for (;;) {
    reportPredictionProgress(ctx, current);
    if (TERMINAL_STATUSES.has(current.status)) return current;
    await pause(Math.min(config.pollIntervalMs * 2 ** failures, POLL_BACKOFF_MAX_MS), ctx.signal);
    let next: Prediction | 'gone';
    try {
      next = await getPrediction(ctx, config, token, current.id);
    } catch (error) {
      const transient = error instanceof RetryableError || error instanceof RateLimitedError;
      if (!transient || ctx.signal.aborted || ++failures > POLL_RETRIES) throw error;
      continue;
    }
    failures = 0;
    if (next === 'gone') {
      throw new RetryableError('PROVIDER_UNAVAILABLE', `replicate: prediction ${current.id} disappeared while running`);
    }
    current = next;
  }
}
