/**
 * Why a worker aborts an attempt: the reason on `RunContext.signal`. Part of the adapter
 * contract, because what an adapter owes the provider depends on it.
 *
 * - `cancel`: the user canceled the task: stop, and cancel upstream where the provider allows.
 * - `timeout`: the attempt ran past the task timeout: the same.
 * - `shutdown`: the worker is stopping; the task goes back to the queue with its provider_ref,
 *   and the next attempt resumes the request: leave it running upstream.
 * - `lease_lost`: another worker owns the task now and may be resuming the same request: touch
 *   nothing upstream.
 */
export type AbortWhy = 'cancel' | 'shutdown' | 'timeout' | 'lease_lost';

export class AttemptAborted extends Error {
  override name = 'AbortError';
  constructor(readonly why: AbortWhy) {
    super(`attempt aborted: ${why}`);
  }
}

/** Why `signal` aborted, when the worker aborted it; undefined while it has not. */
export const abortReason = (signal: AbortSignal): AbortWhy | undefined =>
  signal.aborted && signal.reason instanceof AttemptAborted ? signal.reason.why : undefined;

/**
 * Whether an aborted attempt should cancel its request upstream: yes on cancel and timeout
 * (nobody will collect the result) and on an abort of unknown origin; no on shutdown and a lost
 * lease (see AbortWhy).
 */
export function shouldCancelUpstream(signal: AbortSignal): boolean {
  const why = abortReason(signal);
  return why !== 'shutdown' && why !== 'lease_lost';
}
