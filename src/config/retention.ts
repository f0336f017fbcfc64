import { readInt, type Env } from './env.js';

/** What gc keeps and how often workers run it (docs/retention.md). */
export interface RetentionConfig {
  /** EASEL_IMAGE_RETENTION_DAYS: images (and unused uploads) older than this expire; 0 = never. */
  imageRetentionDays: number;
  /** EASEL_TASK_RETENTION_DAYS: finished tasks older than this are deleted; 0 = never. */
  taskRetentionDays: number;
  /** EASEL_GC_INTERVAL_MS: how often one worker runs gc; 0 = workers never do (cron `easel storage gc`). */
  gcIntervalMs: number;
  /**
   * EASEL_ORPHAN_GRACE_HOURS: an object no row records is deleted only once it is older than
   * this, so the bytes of an attempt or upload still being written (recorded only after the
   * write) are never taken for an orphan.
   */
  orphanGraceHours: number;
}

const DAY_MAX = 100 * 365;
const HOUR = 3600 * 1000;

export function readRetention(env: Env): RetentionConfig {
  return {
    imageRetentionDays: readInt(env, 'EASEL_IMAGE_RETENTION_DAYS', 0, { min: 0, max: DAY_MAX }),
    taskRetentionDays: readInt(env, 'EASEL_TASK_RETENTION_DAYS', 0, { min: 0, max: DAY_MAX }),
    gcIntervalMs: readInt(env, 'EASEL_GC_INTERVAL_MS', HOUR, { min: 0, max: 7 * 24 * HOUR }),
    // At least an hour: a slow upload or a long attempt must finish writing well within it.
    orphanGraceHours: readInt(env, 'EASEL_ORPHAN_GRACE_HOURS', 24, { min: 1, max: 365 * 24 }),
  };
}
