import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from '../../src/db/pool.js';
import { collectGarbage, gcSkipped } from '../../src/retention/gc.js';
import { eventually } from '../helpers/processes.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import {
  createLocalTestStorage,
  expectStorageConsistent,
  retentionOf,
  seedTask,
  seedUpload,
} from '../helpers/retention.js';

const CHILD = fileURLToPath(new URL('../helpers/gc-killed-child.ts', import.meta.url));

let url: string;
let pool: Pool;

beforeAll(async () => {
  url = await createTestDatabase();
  pool = await createTestPool(url);
});
afterAll(async () => {
  await pool?.end();
});

function runDyingGc(root: string, killAfter: number): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx/esm', CHILD], {
      env: { ...process.env, DATABASE_URL: url, GC_ROOT: root, KILL_AFTER: String(killAfter) },
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 60_000,
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve(signal));
  });
}

describe('gc killed half way', () => {
  it('killed mid-batch with SIGKILL, then run again: no orphan object, no dangling row', async () => {
    const local = await createLocalTestStorage();
    // Enough work for several batches of 3 in every step: images to expire, tasks to delete, an
    // upload to drop.
    const expiring = [];
    for (let i = 0; i < 4; i++) expiring.push(await seedTask(pool, local.storage, { daysAgo: 40, images: 2 }));
    for (let i = 0; i < 3; i++) await seedTask(pool, local.storage, { daysAgo: 400, images: 1 });
    await seedUpload(pool, local.storage, 40);
    const young = await seedTask(pool, local.storage, { daysAgo: 1, images: 2 });

    // Killed after 5 confirmed deletes: inside the first batch's deletes (3 images = 6 objects).
    expect(await runDyingGc(local.root, 5)).toBe('SIGKILL');

    // What the kill left: rows marked expired whose objects are still there, queued.
    const { rows: queued } = await pool.query<{ key: string }>('SELECT key FROM storage_deletions');
    expect(queued.length).toBeGreaterThan(0);
    const keys = new Set(await local.keys());
    expect(queued.some((row) => keys.has(row.key))).toBe(true);
    // Never a live row pointing at a deleted object, even now.
    const { rows: live } = await pool.query<{ key: string }>(
      'SELECT storage_key AS key FROM task_images WHERE expired_at IS NULL',
    );
    expect(live.filter((row) => !keys.has(row.key))).toEqual([]);
    // The killed session's advisory lock goes with its connection, once the server notices.
    await eventually(
      'the killed gc to release its lock, and a gc to complete',
      async () =>
        !gcSkipped(await collectGarbage(pool, local.storage, { retention: retentionOf(30, 365), batchSize: 3 })),
      10_000,
    );

    await expectStorageConsistent(pool, local);
    const { rows: expired } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM task_images WHERE expired_at IS NOT NULL',
    );
    expect(expired[0]!.n).toBe(expiring.length * 2);
    const { rows: left } = await pool.query<{ id: string }>('SELECT id FROM tasks ORDER BY id');
    expect(left.map((row) => row.id).sort()).toEqual([...expiring.map((task) => task.id), young.id].sort());
    expect(await pool.query('SELECT count(*)::int AS n FROM uploads').then((r) => r.rows[0].n)).toBe(0);
  });
});
