import type { Pool, PoolClient } from '../db/pool.js';
import type { Storage } from '../storage/storage.js';
import { deleteQueued, queueDeletions } from './deletions.js';

/** What one gc pass is handed: the same for the CLI and the workers' periodic run. */
export interface GcRun {
  pool: Pool;
  storage: Storage;
  /** Rows per transaction: a huge history never becomes one giant transaction. */
  batchSize: number;
  /** Select and count only: nothing is marked, deleted or dequeued. */
  dryRun: boolean;
  /** A delete storage refused; the key stays queued for the next run. */
  onStorageError: (key: string, error: unknown) => void;
  report: GcReport;
  /** Stops the pass between batches (a worker shutting down): any point is a safe one. */
  signal?: AbortSignal;
}

/** What a pass did (or, dry, would do). Lists are capped at SAMPLE entries; counts are whole. */
export interface GcReport {
  dry_run: boolean;
  /** Keys an earlier, interrupted run had queued for deletion. */
  leftover_deletions: number;
  images_expired: number;
  tasks_deleted: number;
  /** Old tasks kept because money records (holds, ledger, external charges) refer to them. */
  tasks_kept_for_billing: number;
  uploads_deleted: number;
  orphans_deleted: number;
  objects_deleted: number;
  /** Deletes storage refused; those keys stay queued and the next run tries again. */
  delete_failures: number;
  sample: {
    images: string[];
    tasks: string[];
    uploads: string[];
    orphans: string[];
  };
}

export const SAMPLE = 1000;

export function emptyReport(dryRun: boolean): GcReport {
  return {
    dry_run: dryRun,
    leftover_deletions: 0,
    images_expired: 0,
    tasks_deleted: 0,
    tasks_kept_for_billing: 0,
    uploads_deleted: 0,
    orphans_deleted: 0,
    objects_deleted: 0,
    delete_failures: 0,
    sample: { images: [], tasks: [], uploads: [], orphans: [] },
  };
}

export function addSample(list: string[], values: readonly string[]): void {
  for (const value of values) {
    if (list.length >= SAMPLE) return;
    list.push(value);
  }
}

/**
 * One batch of the two-phase pattern every step uses: `mark` runs in a transaction that stops
 * recording some objects and returns their keys, which are queued in that same transaction;
 * after the commit the objects are deleted and dequeued. Killed anywhere in between, the next
 * run finds the keys queued.
 */
export async function markThenDelete(run: GcRun, mark: (client: PoolClient) => Promise<string[]>): Promise<void> {
  run.signal?.throwIfAborted();
  const client = await run.pool.connect();
  let keys: string[];
  let broken = false;
  try {
    await client.query('BEGIN');
    keys = await mark(client);
    await queueDeletions(client, keys);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw error;
  } finally {
    client.release(broken);
  }
  await deleteQueuedCounting(run, keys);
}

export async function deleteQueuedCounting(run: GcRun, keys: readonly string[]): Promise<void> {
  const outcome = await deleteQueued(run.pool, run.storage, keys, run.onStorageError);
  run.report.objects_deleted += outcome.deleted;
  run.report.delete_failures += outcome.failed;
}
