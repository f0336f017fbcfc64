/**
 * Adapters may report progress on every step; storing each would flood the database and every
 * SSE client. This writes nothing in an attempt's first `minIntervalMs` (a task that finishes
 * that fast needs no progress: its result alone is one write instead of three), then a stage
 * change promptly and progress within a stage at most once per `minIntervalMs`, never two
 * writes in flight at once (a stage change that arrives meanwhile is written right after).
 * The final state comes with the attempt's own result.
 */
export interface ProgressReporter {
  /** Called by the adapter, as often as it likes. */
  report(stage: string, pct?: number): void;
  /**
   * Write nothing more: drop what is pending, ignore later reports, and resolve once a write in
   * flight has finished. Awaited before an attempt's final write, so no progress event of an
   * attempt can follow its terminal event.
   */
  stop(): Promise<void>;
}

export function createProgressReporter(
  write: (stage: string, pct: number) => Promise<unknown>,
  options: { minIntervalMs: number; onError: (error: unknown) => void },
): ProgressReporter {
  const startedAt = Date.now();
  let lastStage: string | undefined;
  let lastPct = -1;
  let lastWriteAt = startedAt;
  let inFlight: Promise<void> | undefined;
  let pending: { stage: string; pct: number } | undefined;
  let stopped = false;

  const send = (stage: string, pct: number): void => {
    lastStage = stage;
    lastPct = pct;
    lastWriteAt = Date.now();
    inFlight = write(stage, pct)
      .then(() => undefined, options.onError)
      .finally(() => {
        inFlight = undefined;
        const next = pending;
        pending = undefined;
        if (next && !stopped) send(next.stage, next.pct);
      });
  };

  const report = (stage: string, pct?: number): void => {
    if (stopped) return;
    const progress = Math.max(0, Math.min(100, Math.round(pct ?? 0)));
    const now = Date.now();
    if (now - startedAt < options.minIntervalMs) return;
    const stageChanged = stage !== (pending?.stage ?? lastStage);
    if (inFlight) {
      if (stageChanged || pending) pending = { stage, pct: progress };
      return;
    }
    if (!stageChanged && (progress === lastPct || now - lastWriteAt < options.minIntervalMs)) return;
    send(stage, progress);
  };

  const stop = async (): Promise<void> => {
    stopped = true;
    pending = undefined;
    // A write in flight may chain one pending write in its `finally`; `stopped` prevents that.
    while (inFlight) await inFlight;
  };

  return { report, stop };
}
