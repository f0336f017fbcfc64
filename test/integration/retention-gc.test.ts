import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Pool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { thumbnailKey } from '../../src/images/thumbnail.js';
import { collectGarbage, gcSkipped, type GcReport } from '../../src/retention/gc.js';
import type { Storage } from '../../src/storage/storage.js';
import { expectLedgerConsistent } from '../helpers/credits.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import {
  createLocalTestStorage,
  expectStorageConsistent,
  retentionOf,
  seedTask,
  seedUpload,
  type LocalTestStorage,
} from '../helpers/retention.js';

let pool: Pool;
let local: LocalTestStorage;

beforeAll(async () => {
  pool = await createTestPool(await createTestDatabase());
});
afterAll(async () => {
  await pool?.end();
});
beforeEach(async () => {
  // Each test starts from empty tables and a fresh folder; order matters for the foreign keys.
  await pool.query(`TRUNCATE task_events, task_images, storage_deletions, uploads, external_charges,
                     credit_holds, credit_accounts, tasks CASCADE`);
  local = await createLocalTestStorage();
});

async function gc(options: { imageDays?: number; taskDays?: number; dryRun?: boolean; storage?: Storage }) {
  const outcome = await collectGarbage(pool, options.storage ?? local.storage, {
    retention: retentionOf(options.imageDays ?? 0, options.taskDays ?? 0),
    dryRun: options.dryRun,
    batchSize: 2,
  });
  if (gcSkipped(outcome)) throw new Error('gc was skipped');
  return outcome;
}

async function imageRows(taskId: string) {
  const { rows } = await pool.query<{ index: number; expired_at: Date | null }>(
    'SELECT index, expired_at FROM task_images WHERE task_id = $1 ORDER BY index',
    [taskId],
  );
  return rows;
}

describe('image retention', () => {
  it('expires images of finished tasks past the retention, with their thumbnails, and keeps the rest', async () => {
    const old = await seedTask(pool, local.storage, { daysAgo: 40, images: 3 });
    const young = await seedTask(pool, local.storage, { daysAgo: 10 });
    // Old but still running (a retried dead letter): its images are not finished business.
    const running = await seedTask(pool, local.storage, { daysAgo: 40, status: 'running' });

    const report = await gc({ imageDays: 30 });

    expect(report.images_expired).toBe(3);
    expect((await imageRows(old.id)).every((row) => row.expired_at !== null)).toBe(true);
    expect((await imageRows(young.id)).map((row) => row.expired_at)).toEqual([null]);
    expect((await imageRows(running.id)).map((row) => row.expired_at)).toEqual([null]);
    const keys = await local.keys();
    for (const key of old.imageKeys) {
      expect(keys).not.toContain(key);
      expect(keys).not.toContain(thumbnailKey(key));
    }
    expect(keys).toContain(young.imageKeys[0]);
    expect(keys).toContain(thumbnailKey(young.imageKeys[0]!));
    await expectStorageConsistent(pool, local);
    // Idempotent: a second run finds nothing left to do.
    expect((await gc({ imageDays: 30 })).images_expired).toBe(0);
  });

  it('keeps everything with retention unset (0)', async () => {
    const old = await seedTask(pool, local.storage, { daysAgo: 4000 });
    const report = await gc({});
    expect(report.images_expired + report.tasks_deleted + report.uploads_deleted).toBe(0);
    expect((await imageRows(old.id)).map((row) => row.expired_at)).toEqual([null]);
  });
});

describe('dry run', () => {
  it('reports what would go and changes nothing', async () => {
    const oldImage = await seedTask(pool, local.storage, { daysAgo: 40 });
    const oldTask = await seedTask(pool, local.storage, { daysAgo: 400 });
    const upload = await seedUpload(pool, local.storage, 40);
    await local.storage.put('tasks/zz/crashed-attempt.png', Buffer.from('x'), 'image/png');
    await local.age('tasks/zz/crashed-attempt.png', 48);
    const snapshot = async () => ({
      keys: await local.keys(),
      tasks: (await pool.query('SELECT id, status FROM tasks ORDER BY id')).rows,
      images: (await pool.query('SELECT task_id, index, expired_at FROM task_images ORDER BY task_id, index')).rows,
      uploads: (await pool.query('SELECT id FROM uploads')).rows,
      events: (await pool.query('SELECT count(*) FROM task_events')).rows,
      queued: (await pool.query('SELECT key FROM storage_deletions')).rows,
    });
    const before = await snapshot();

    const report = await gc({ imageDays: 30, taskDays: 365, dryRun: true });

    expect(report).toMatchObject({
      dry_run: true,
      images_expired: 2,
      tasks_deleted: 1,
      uploads_deleted: 1,
      orphans_deleted: 1,
      objects_deleted: 0,
    });
    expect(report.sample.tasks).toEqual([oldTask.id]);
    expect(report.sample.images.sort()).toEqual([`${oldImage.id}/0`, `${oldTask.id}/0`].sort());
    expect(report.sample.uploads).toEqual([upload.id]);
    expect(report.sample.orphans).toEqual(['tasks/zz/crashed-attempt.png']);
    expect(await snapshot()).toEqual(before);
  });
});

describe('orphans', () => {
  it('removes objects nothing records once older than the grace, keeps fresh ones and foreign prefixes', async () => {
    const live = await seedTask(pool, local.storage, { daysAgo: 1 });
    for (const key of [...live.imageKeys, thumbnailKey(live.imageKeys[0]!)]) await local.age(key, 48);
    const stale = ['tasks/ab/dead-attempt-0.png', 'tasks/ab/dead-attempt-0.png.thumb.webp', 'inputs/cd/failed.png'];
    for (const key of stale) {
      await local.storage.put(key, Buffer.from('x'), 'image/png');
      await local.age(key, 25);
    }
    // Being written right now by an attempt: not recorded yet, and must survive.
    await local.storage.put('tasks/ab/in-flight-0.png', Buffer.from('x'), 'image/png');
    // Not gc's: never listed, never deleted.
    await local.storage.put('backups/keep.txt', Buffer.from('x'), 'text/plain');
    await local.age('backups/keep.txt', 1000);

    const report = await gc({});

    expect(report.orphans_deleted).toBe(3);
    const keys = await local.keys();
    for (const key of stale) expect(keys).not.toContain(key);
    expect(keys).toEqual(
      [...live.imageKeys, thumbnailKey(live.imageKeys[0]!), 'tasks/ab/in-flight-0.png', 'backups/keep.txt'].sort(),
    );
  });
});

describe('uploads', () => {
  it('deletes old uploads no task uses, keeps used and young ones', async () => {
    const unused = await seedUpload(pool, local.storage, 40);
    const used = await seedUpload(pool, local.storage, 40);
    const young = await seedUpload(pool, local.storage, 5);
    await seedTask(pool, local.storage, { daysAgo: 2, inputKey: used.key });

    const report = await gc({ imageDays: 30 });

    expect(report.uploads_deleted).toBe(1);
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM uploads ORDER BY id');
    expect(rows.map((row) => row.id).sort()).toEqual([used.id, young.id].sort());
    const keys = await local.keys();
    expect(keys).not.toContain(unused.key);
    expect(keys).toContain(used.key);
    await expectStorageConsistent(pool, local);
  });
});

describe('task retention', () => {
  /** A priced task's money trail: a top-up, a hold and its capture, and an external charge. */
  async function bill(taskId: string) {
    const holdId = crypto.randomUUID();
    await pool.query(`INSERT INTO credit_accounts (user_id, balance, held) VALUES ($1, 900, 0)`, [LOCAL_USER_ID]);
    await pool.query(
      `INSERT INTO credit_holds (id, task_id, user_id, chain, amount, prices, status, captured, closed_at)
       VALUES ($1, $2, $3, 1, 100, '{}', 'captured', 100, now())`,
      [holdId, taskId, LOCAL_USER_ID],
    );
    await pool.query(
      `INSERT INTO credit_ledger (user_id, kind, amount, held, task_id, hold_id) VALUES
         ($1, 'top_up', 1000, 0, NULL, NULL), ($1, 'hold', 0, 100, $2, $3), ($1, 'capture', -100, -100, $2, $3)`,
      [LOCAL_USER_ID, taskId, holdId],
    );
    await pool.query(
      `INSERT INTO external_charges (task_id, user_id, email, amount, status) VALUES ($1, $2, 'a@example.com', 100, 'settled')`,
      [taskId, LOCAL_USER_ID],
    );
  }

  it('deletes old finished tasks with events, images, objects and inputs, but keeps billed ones and their money', async () => {
    const plain = await seedTask(pool, local.storage, {
      daysAgo: 400,
      status: 'failed',
      inputKey: 'inputs/aa/own.png',
    });
    await local.storage.put('inputs/aa/own.png', Buffer.from('in'), 'image/png');
    const shared = await seedUpload(pool, local.storage, 1);
    const fromUpload = await seedTask(pool, local.storage, { daysAgo: 400, inputKey: shared.key });
    const billed = await seedTask(pool, local.storage, { daysAgo: 400, images: 2 });
    await bill(billed.id);
    const young = await seedTask(pool, local.storage, { daysAgo: 10 });
    const ledgerBefore = (await pool.query('SELECT * FROM credit_ledger ORDER BY id')).rows;

    const report = await gc({ taskDays: 365 });

    expect(report.tasks_deleted).toBe(2);
    expect(report.tasks_kept_for_billing).toBe(1);
    const { rows: tasks } = await pool.query<{ id: string }>('SELECT id FROM tasks');
    expect(tasks.map((row) => row.id).sort()).toEqual([billed.id, young.id].sort());
    const { rows: events } = await pool.query<{ task_id: string }>('SELECT task_id FROM task_events');
    expect(events.map((row) => row.task_id)).toEqual([young.id]);
    // The billed task keeps its row and money records, its images are expired.
    expect((await imageRows(billed.id)).every((row) => row.expired_at !== null)).toBe(true);
    expect((await pool.query('SELECT * FROM credit_ledger ORDER BY id')).rows).toEqual(ledgerBefore);
    expect((await pool.query('SELECT count(*)::int AS n FROM credit_holds')).rows[0].n).toBe(1);
    expect((await pool.query('SELECT count(*)::int AS n FROM external_charges')).rows[0].n).toBe(1);
    await expectLedgerConsistent(pool);
    const keys = await local.keys();
    expect(keys).not.toContain('inputs/aa/own.png');
    // The upload still holds its object.
    expect(keys).toContain(shared.key);
    for (const key of [...plain.imageKeys, ...fromUpload.imageKeys, ...billed.imageKeys])
      expect(keys).not.toContain(key);
    await expectStorageConsistent(pool, local);
  });
});

describe('one gc at a time', () => {
  it('a second gc while one runs does nothing, and the work is done once', async () => {
    const old = await seedTask(pool, local.storage, { daysAgo: 40, images: 2 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inDelete = new Promise<void>((resolve) => (entered = resolve));
    const slow: Storage = {
      ...local.storage,
      async delete(key) {
        entered();
        await gate;
        return local.storage.delete(key);
      },
    };
    const first = gc({ imageDays: 30, storage: slow });
    await inDelete;
    const second = await collectGarbage(pool, local.storage, { retention: retentionOf(30, 0) });
    expect(second).toEqual({ skipped: 'another gc is running' });
    release();
    const report = (await first) as GcReport;
    expect(report.images_expired).toBe(2);
    expect(report.objects_deleted).toBe(4);
    expect((await imageRows(old.id)).every((row) => row.expired_at !== null)).toBe(true);
    // The lock is released: the next run goes ahead.
    expect(gcSkipped(await collectGarbage(pool, local.storage, { retention: retentionOf(30, 0) }))).toBe(false);
  });
});

describe('interrupted gc', () => {
  it('deletes storage refused stay queued, no row points at them unmarked, and the next run finishes', async () => {
    const old = await seedTask(pool, local.storage, { daysAgo: 40, images: 3 });
    const failing: Storage = {
      ...local.storage,
      delete: () => Promise.reject(new Error('bucket went away')),
    };
    const first = await gc({ imageDays: 30, storage: failing });
    expect(first.images_expired).toBe(3);
    expect(first.delete_failures).toBe(6);
    // Marked, not deleted: the rows say expired, the keys wait in the outbox.
    expect((await imageRows(old.id)).every((row) => row.expired_at !== null)).toBe(true);
    const { rows } = await pool.query<{ key: string }>('SELECT key FROM storage_deletions ORDER BY key');
    expect(rows.map((row) => row.key)).toEqual(old.imageKeys.flatMap((key) => [key, thumbnailKey(key)]).sort());

    const second = await gc({ imageDays: 30 });
    expect(second.leftover_deletions).toBe(6);
    await expectStorageConsistent(pool, local);
  });
});

describe('stopped gc', () => {
  it('an abort (a worker shutting down) stops the pass at the next batch; the next pass finishes', async () => {
    for (let i = 0; i < 3; i++) await seedTask(pool, local.storage, { daysAgo: 40, images: 2 });
    const controller = new AbortController();
    const stopping: Storage = {
      ...local.storage,
      delete(key) {
        controller.abort(new Error('shutting down'));
        return local.storage.delete(key);
      },
    };
    await expect(
      collectGarbage(pool, stopping, { retention: retentionOf(30, 0), batchSize: 2, signal: controller.signal }),
    ).rejects.toThrow('shutting down');
    // One batch of 2 images was marked and its objects deleted; the rest were not touched.
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM task_images WHERE expired_at IS NOT NULL',
    );
    expect(rows[0]!.n).toBe(2);
    expect((await gc({ imageDays: 30 })).images_expired).toBe(4);
    await expectStorageConsistent(pool, local);
  });
});
