/**
 * Adapters may report progress on every step; storing each would flood the database and every
 * SSE client. This writes nothing in an attempt's first `minIntervalMs` (a task that finishes
 * that fast needs no progress: its result alone is one write instead of three), then a stage
 * change promptly and progress within a stage at most once per `minIntervalMs`, never two
 * writes in flight at once (a stage change that arrives meanwhile is written right after).
 * The final state comes with the attempt's own result.
 */
export function createProgressReporter(
  write: (stage: string, pct: number) => Promise<unknown>,
  options: { minIntervalMs: number; onError: (error: unknown) => void },
): (stage: string, pct?: number) => void {
  const startedAt = Date.now();
  let lastStage: string | undefined;
  let lastPct = -1;
  let lastWriteAt = startedAt;
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
}
