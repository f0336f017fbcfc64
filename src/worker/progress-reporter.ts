/**
 * Adapters may report progress on every step; storing each would flood the database and every
 * SSE client (and each NOTIFY-bearing commit takes a global lock). This keeps a stage change
 * prompt, at most one write per `minIntervalMs` within a stage, and never two writes in flight
 * at once (a stage change that arrives meanwhile is written right after). The final state
 * comes with the attempt's own result.
 */
export function createProgressReporter(
  write: (stage: string, pct: number) => Promise<unknown>,
  options: { minIntervalMs: number; onError: (error: unknown) => void },
): (stage: string, pct?: number) => void {
  let lastStage: string | undefined;
  let lastPct = -1;
  let lastWriteAt = 0;
  let inFlight = false;
  let pending: { stage: string; pct: number } | undefined;

  const send = (stage: string, pct: number): void => {
    lastStage = stage;
    lastPct = pct;
    lastWriteAt = Date.now();
    inFlight = true;
    write(stage, pct)
      .catch(options.onError)
      .finally(() => {
        inFlight = false;
        const next = pending;
        pending = undefined;
        if (next) send(next.stage, next.pct);
      });
  };

  return (stage, pct) => {
    const progress = Math.max(0, Math.min(100, Math.round(pct ?? 0)));
    const stageChanged = stage !== (pending?.stage ?? lastStage);
    if (inFlight) {
      if (stageChanged || pending) pending = { stage, pct: progress };
      return;
    }
    if (!stageChanged && (progress === lastPct || Date.now() - lastWriteAt < options.minIntervalMs)) return;
    send(stage, progress);
  };
}
