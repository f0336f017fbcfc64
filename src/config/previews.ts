import { readInt, type Env } from './env.js';

/** How often and how large progress previews may be stored (src/worker/progress-reporter.ts). */
export interface PreviewLimits {
  intervalMs: number;
  maxBytes: number;
}

/**
 * Progress previews (the intermediate images A1111 and ComfyUI show while they work):
 * `EASEL_PREVIEW_INTERVAL_MS`, the least time between two stored previews of one task, and
 * `EASEL_PREVIEW_MAX_BYTES`, the largest preview kept (bigger ones are skipped). Both bound what
 * a backend sending frames fast can cost the database and the event stream.
 */
export function readPreviewConfig(env: Env): PreviewLimits {
  return {
    intervalMs: readInt(env, 'EASEL_PREVIEW_INTERVAL_MS', 1000, { min: 100, max: 600_000 }),
    maxBytes: readInt(env, 'EASEL_PREVIEW_MAX_BYTES', 1024 * 1024, { min: 1024, max: 16 * 1024 * 1024 }),
  };
}
