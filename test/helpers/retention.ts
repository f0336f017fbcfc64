import { mkdtemp, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { uuidv7 } from 'uuidv7';
import { expect } from 'vitest';
import type { Pool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { MANAGED_PREFIXES, recordingKey } from '../../src/retention/keys.js';
import { thumbnailKey } from '../../src/images/thumbnail.js';
import { createLocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/storage.js';

export interface LocalTestStorage {
  root: string;
  storage: Storage;
  /** Make an object look written `hours` ago (what list() reports as its age). */
  age(key: string, hours: number): Promise<void>;
  keys(): Promise<string[]>;
}

export async function createLocalTestStorage(): Promise<LocalTestStorage> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'easel-gc-'));
  const storage = createLocalStorage(root);
  return {
    root,
    storage,
    async age(key, hours) {
      const when = new Date(Date.now() - hours * 3600 * 1000);
      await utimes(path.join(root, key), when, when);
    },
    async keys() {
      const keys: string[] = [];
      for await (const object of storage.list('')) keys.push(object.key);
      return keys.sort();
    },
  };
}

export interface SeededTask {
  id: string;
  imageKeys: string[];
  inputKey?: string;
}

/**
 * A task as a worker leaves it: finished `finishedDaysAgo` days ago with `images` images recorded
 * as old, their bytes and thumbnails in storage, and an event. The ages are set in SQL because gc
 * compares them with the database's clock.
 */
export async function seedTask(
  pool: Pool,
  storage: Storage,
  options: {
    status?: 'succeeded' | 'failed' | 'canceled' | 'running';
    daysAgo: number;
    images?: number;
    inputKey?: string;
    userId?: string;
  },
): Promise<SeededTask> {
  const id = uuidv7();
  const status = options.status ?? 'succeeded';
  const input = options.inputKey
    ? JSON.stringify({
        storage_key: options.inputKey,
        content_type: 'image/png',
        bytes: 4,
        width: 1,
        height: 1,
        sha256: 'x',
      })
    : null;
  await pool.query(
    `INSERT INTO tasks (id, user_id, kind, provider, model, params, priority, vtime, status, max_attempts,
                        input_image, created_at, finished_at)
     VALUES ($1, $2, $3, 'sketch', 'sketch-1', '{"prompt":"a fox"}', 5, 1, $4, 3, $5,
             now() - make_interval(days => $6), CASE WHEN $4 = 'running' THEN NULL ELSE now() - make_interval(days => $6) END)`,
    [id, options.userId ?? LOCAL_USER_ID, input ? 'img2img' : 'txt2img', status, input, options.daysAgo],
  );
  const imageKeys: string[] = [];
  for (let index = 0; index < (options.images ?? 1); index++) {
    const key = `tasks/${id.slice(-2)}/${id}-${randomUUID().slice(0, 8)}-${index}.png`;
    await storage.put(key, Buffer.from(`image ${index}`), 'image/png');
    await storage.put(thumbnailKey(key), Buffer.from(`thumb ${index}`), 'image/webp');
    await pool.query(
      `INSERT INTO task_images (task_id, index, storage_key, content_type, bytes, width, height, seed, sha256, created_at)
       VALUES ($1, $2, $3, 'image/png', 7, 1, 1, 42, 'abc', now() - make_interval(days => $4))`,
      [id, index, key, options.daysAgo],
    );
    imageKeys.push(key);
  }
  await pool.query(`INSERT INTO task_events (task_id, user_id, type, data) VALUES ($1, $2, 'task:succeeded', '{}')`, [
    id,
    options.userId ?? LOCAL_USER_ID,
  ]);
  return { id, imageKeys, inputKey: options.inputKey };
}

/** An upload made `daysAgo` days ago, its bytes stored under inputs/. */
export async function seedUpload(pool: Pool, storage: Storage, daysAgo: number): Promise<{ id: string; key: string }> {
  const id = uuidv7();
  const key = `inputs/${id.slice(-2)}/${id}.png`;
  await storage.put(key, Buffer.from('input'), 'image/png');
  await pool.query(
    `INSERT INTO uploads (id, user_id, storage_key, content_type, bytes, width, height, sha256, created_at)
     VALUES ($1, $2, $3, 'image/png', 5, 1, 1, 'x', now() - make_interval(days => $4))`,
    [id, LOCAL_USER_ID, key, daysAgo],
  );
  return { id, key };
}

/**
 * gc's invariants once a run has completed: every live image row's bytes exist (no dangling
 * row), every object gc manages is recorded by a live row (no orphan), and nothing is left queued.
 */
export async function expectStorageConsistent(pool: Pool, local: LocalTestStorage): Promise<void> {
  const objects = new Set(await local.keys());
  const { rows: live } = await pool.query<{ key: string }>(
    `SELECT storage_key AS key FROM task_images WHERE expired_at IS NULL
     UNION SELECT storage_key FROM uploads
     UNION SELECT input_image ->> 'storage_key' FROM tasks WHERE input_image IS NOT NULL`,
  );
  const recorded = new Set(live.map((row) => row.key));
  const { rows: images } = await pool.query<{ key: string }>(
    'SELECT storage_key AS key FROM task_images WHERE expired_at IS NULL',
  );
  expect(
    images.map((row) => row.key).filter((key) => !objects.has(key)),
    'live image rows whose bytes are gone',
  ).toEqual([]);
  const managed = [...objects].filter((key) => MANAGED_PREFIXES.some((prefix) => key.startsWith(prefix)));
  expect(
    managed.filter((key) => !recorded.has(recordingKey(key))),
    'objects no row records',
  ).toEqual([]);
  const { rows: queued } = await pool.query('SELECT key FROM storage_deletions');
  expect(queued, 'deletions left queued').toEqual([]);
}

export const retentionOf = (imageDays: number, taskDays: number, graceHours = 24) => ({
  imageRetentionDays: imageDays,
  taskRetentionDays: taskDays,
  orphanGraceHours: graceHours,
});
