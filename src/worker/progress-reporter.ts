import type { PreviewLimits } from '../config/previews.js';
import type { PreviewImage } from '../providers/types.js';

/**
 * Adapters may report progress on every step; storing each would flood the database and every
 * SSE client. This writes nothing in an attempt's first `minIntervalMs` (a task that finishes
 * that fast needs no progress: its result alone is one write instead of three), then a stage
 * change promptly and progress within a stage at most once per `minIntervalMs`, never two
 * writes in flight at once (a stage change that arrives meanwhile is written right after).
 * The final state comes with the attempt's own result.
 *
 * Previews ride on progress writes: only the latest one is kept, at most one is written per
 * `preview.intervalMs` (so a backend sending many frames a second costs one row update and one
 * event per interval), and one larger than `preview.maxBytes` is dropped.
 */
export interface ProgressReporter {
  /** Called by the adapter, as often as it likes. */
  report(stage: string, pct?: number, preview?: PreviewImage): void;
  /**
   * Write nothing more: drop what is pending, ignore later reports, and resolve once a write in
   * flight has finished. Awaited before an attempt's final write, so no progress event of an
   * attempt can follow its terminal event.
   */
  stop(): Promise<void>;
}

export function createProgressReporter(
  write: (stage: string, pct: number, preview?: PreviewImage) => Promise<unknown>,
  options: { minIntervalMs: number; onError: (error: unknown) => void; preview?: PreviewLimits },
): ProgressReporter {
  const startedAt = Date.now();
  let lastStage: string | undefined;
  let lastPct = -1;
  let lastWriteAt = startedAt;
  let inFlight: Promise<void> | undefined;
  let pending: { stage: string; pct: number } | undefined;
  let stopped = false;
  let latestPreview: PreviewImage | undefined;
  let lastPreviewAt = -Infinity;

  const previewDue = (now: number): boolean =>
    latestPreview !== undefined && now - lastPreviewAt >= (options.preview?.intervalMs ?? Infinity);

  const send = (stage: string, pct: number): void => {
    const now = Date.now();
    lastStage = stage;
    lastPct = pct;
    lastWriteAt = now;
    let preview: PreviewImage | undefined;
    if (previewDue(now)) {
      preview = latestPreview;
      latestPreview = undefined;
      lastPreviewAt = now;
    }
    inFlight = write(stage, pct, preview)
      .then(() => undefined, options.onError)
      .finally(() => {
        inFlight = undefined;
        const next = pending;
        pending = undefined;
        if (next && !stopped) send(next.stage, next.pct);
      });
  };

  const report = (stage: string, pct?: number, preview?: PreviewImage): void => {
    if (stopped) return;
    if (preview && options.preview && preview.data.length <= options.preview.maxBytes) latestPreview = preview;
    const progress = Math.max(0, Math.min(100, Math.round(pct ?? 0)));
    const now = Date.now();
    if (now - startedAt < options.minIntervalMs) return;
    const stageChanged = stage !== (pending?.stage ?? lastStage);
    if (inFlight) {
      if (stageChanged || pending) pending = { stage, pct: progress };
      return;
    }
    const progressDue = progress !== lastPct && now - lastWriteAt >= options.minIntervalMs;
    if (!stageChanged && !progressDue && !previewDue(now)) return;
    send(stage, progress);
  };

  const stop = async (): Promise<void> => {
    stopped = true;
    pending = undefined;
    latestPreview = undefined;
    // A write in flight may chain one pending write in its `finally`; `stopped` prevents that.
    while (inFlight) await inFlight;
  };

  return { report, stop };
}
