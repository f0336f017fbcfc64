import type { Pool } from '../db/pool.js';
import type { RetentionConfig } from '../config/retention.js';
import type { Storage } from '../storage/storage.js';
import { queuedKeys } from './deletions.js';
import { deleteOldTasks } from './delete-tasks.js';
import { expireOldImages } from './expire-images.js';
import { sweepOrphans } from './orphans.js';
import { deleteQueuedCounting, emptyReport, type GcReport, type GcRun } from './run.js';
import { deleteUnusedUploads } from './uploads.js';

export type { GcReport } from './run.js';

export interface GcOptions {
  retention: Pick<RetentionConfig, 'imageRetentionDays' | 'taskRetentionDays' | 'orphanGraceHours'>;
  dryRun?: boolean;
  batchSize?: number;
  onStorageError?: (key: string, error: unknown) => void;
  /** Aborting stops the pass between batches, throwing the signal's reason; the next pass resumes. */
  signal?: AbortSignal;
}

/** Another gc (a worker's or a CLI's) holds the lock: this one did nothing. */
export interface GcSkipped {
  skipped: 'another gc is running';
}

const DEFAULT_BATCH = 500;

/**
 * One session-level advisory lock for every gc in the cluster, whether a worker or `easel storage
 * gc` runs it: two at once would only race over the same rows and objects. Session-level, held on
 * a connection of its own for the whole pass, so it is released when that connection ends, even
 * when the process is killed.
 */
const GC_LOCK = `hashtextextended('easel:storage-gc', 0)`;

/**
 * Retention and garbage collection, in an order where each step leaves the next less to do:
 * finish the deletions an interrupted run queued; expire old images; delete (or trim) old tasks;
 * delete old unused uploads; then sweep objects nothing records.
 */
export async function collectGarbage(pool: Pool, storage: Storage, options: GcOptions): Promise<GcReport | GcSkipped> {
  const lockClient = await pool.connect();
  let locked = false;
  try {
    const { rows } = await lockClient.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${GC_LOCK}) AS locked`);
    locked = rows[0]!.locked;
    if (!locked) return { skipped: 'another gc is running' };
    const dryRun = options.dryRun ?? false;
    const run: GcRun = {
      pool,
      storage,
      batchSize: options.batchSize ?? DEFAULT_BATCH,
      dryRun,
      onStorageError: options.onStorageError ?? (() => {}),
      report: emptyReport(dryRun),
      signal: options.signal,
    };
    const { imageRetentionDays, taskRetentionDays, orphanGraceHours } = options.retention;
    await finishQueuedDeletions(run);
    await expireOldImages(run, imageRetentionDays);
    await deleteOldTasks(run, taskRetentionDays);
    await deleteUnusedUploads(run, imageRetentionDays);
    await sweepOrphans(run, orphanGraceHours);
    return run.report;
  } finally {
    // A failed unlock (connection gone) releases the lock anyway: it is the session's.
    let broken = false;
    if (locked) await lockClient.query(`SELECT pg_advisory_unlock(${GC_LOCK})`).catch(() => (broken = true));
    lockClient.release(broken);
  }
}

/** The outbox of a run that was killed (or whose deletes storage refused) before it finished. */
async function finishQueuedDeletions(run: GcRun): Promise<void> {
  let after = '';
  for (;;) {
    run.signal?.throwIfAborted();
    const keys = await queuedKeys(run.pool, after, run.batchSize);
    run.report.leftover_deletions += keys.length;
    if (!run.dryRun && keys.length > 0) await deleteQueuedCounting(run, keys);
    if (keys.length < run.batchSize) return;
    after = keys.at(-1)!;
  }
}

export const gcSkipped = (outcome: GcReport | GcSkipped): outcome is GcSkipped => 'skipped' in outcome;
