import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createLocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/storage.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { purgeDeadLetters } from '../../src/tasks/dead-letters.js';
import { thumbnailKey } from '../../src/images/thumbnail.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { enqueueTask } from '../helpers/queue.js';

/**
 * The /v1/admin/ views over real HTTP and a real database: two users and an admin, each with a
 * key. No worker runs, so every task stays where the test puts it.
 */

interface Problem {
  code: string;
  detail: string;
  errors?: Array<{ field: string; code: string; in: string }>;
}
interface AdminTask {
  id: string;
  user_id: string;
  status: string;
  provider: string;
  attempt: number;
  error: { code: string; message: string } | null;
}
interface Page<T> {
  data: T[];
  next_cursor: string | null;
}
interface Outcome {
  ids: string[];
  skipped: string[];
  more: boolean;
  retried?: number;
  purged?: number;
  images_deleted?: number;
}

let easel: TestEasel;
let storage: Storage;
let alice: string;
let bob: string;
let adminId: string;
const keys = { alice: '', bob: '', admin: '' };
const as = (who: keyof typeof keys) => ({ authorization: `Bearer ${keys[who]}` });
const asAdmin = <T>(method: string, route: string, body?: unknown) =>
  api<T>(easel.url, method, route, body, as('admin'));

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), { roles: { api: true, worker: false } });
  storage = createLocalStorage(path.join(easel.config.dataDir, 'images'));
  alice = await createUser(easel.pool, 'alice');
  bob = await createUser(easel.pool, 'bob');
  adminId = await createUser(easel.pool, 'an admin');
  await easel.pool.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [adminId]);
  keys.alice = (await createApiKey(easel.pool, alice, 'test')).key;
  keys.bob = (await createApiKey(easel.pool, bob, 'test')).key;
  keys.admin = (await createApiKey(easel.pool, adminId, 'test')).key;
});
afterAll(async () => {
  await easel?.stop();
});

type Seeded = { status?: 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled'; error?: string; attempt?: number };

/** A task of `userId` on `provider`, put straight into the state the test needs. */
async function seed(userId: string, provider: string, state: Seeded = {}): Promise<string> {
  const task = await enqueueTask(easel.pool, { userId, provider });
  const status = state.status ?? 'queued';
  if (status !== 'queued' || state.attempt !== undefined || state.error !== undefined) {
    await easel.pool.query(
      `UPDATE tasks SET status = $2, attempt = $3,
              error = CASE WHEN $4::text IS NULL THEN NULL ELSE jsonb_build_object('code', $4::text, 'message', 'it broke') END,
              finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'canceled') THEN now() END,
              started_at = CASE WHEN $2 <> 'queued' THEN now() END
       WHERE id = $1`,
      [task.id, status, state.attempt ?? (status === 'queued' ? 0 : 1), state.error ?? null],
    );
  }
  return task.id;
}

async function seedMany(count: number, userId: string, provider: string, state: Seeded = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await seed(userId, provider, state));
  return ids;
}

/** A stored file recorded as a result image of the task; returns its storage key. */
async function addResultImage(taskId: string): Promise<string> {
  const key = `tasks/${taskId}/admin-test-0.png`;
  await storage.put(key, Buffer.from('not really a png'), 'image/png');
  await easel.pool.query(
    `INSERT INTO task_images (task_id, index, storage_key, content_type, bytes, width, height, seed, sha256)
     VALUES ($1, 0, $2, 'image/png', 16, 64, 64, 1, 'x')`,
    [taskId, key],
  );
  return key;
}

/** A stored input image on the task; `fromUpload` also records it as the owner's upload (shared). */
async function addInputImage(taskId: string, userId: string, fromUpload: boolean): Promise<string> {
  const key = `inputs/aa/${crypto.randomUUID()}.png`;
  await storage.put(key, Buffer.from('input bytes'), 'image/png');
  const image = { storage_key: key, content_type: 'image/png', bytes: 11, width: 64, height: 64, sha256: 'y' };
  await easel.pool.query(`UPDATE tasks SET kind = 'img2img', input_image = $2 WHERE id = $1`, [taskId, image]);
  if (fromUpload) {
    await easel.pool.query(
      `INSERT INTO uploads (id, user_id, storage_key, content_type, bytes, width, height, sha256)
       VALUES ($1, $2, $3, 'image/png', 11, 64, 64, 'y')`,
      [crypto.randomUUID(), userId, key],
    );
  }
  return key;
}

const stored = (key: string) => existsSync(path.join(easel.config.dataDir, 'images', key));
const statusOf = async (id: string) =>
  (await easel.pool.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [id])).rows[0]?.status;
const eventsOf = async (id: string, type: string) =>
  Number(
    (await easel.pool.query('SELECT count(*) AS n FROM task_events WHERE task_id = $1 AND type = $2', [id, type]))
      .rows[0].n,
  );

/** Every page of a list, walked with `limit` per page. */
async function allPages(route: string, limit: number): Promise<AdminTask[]> {
  const seen: AdminTask[] = [];
  let cursor: string | null = null;
  do {
    const separator = route.includes('?') ? '&' : '?';
    const page: { status: number; body: Page<AdminTask> } = await asAdmin<Page<AdminTask>>(
      'GET',
      `${route}${separator}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    expect(page.status).toBe(200);
    expect(page.body.data.length).toBeLessThanOrEqual(limit);
    seen.push(...page.body.data);
    cursor = page.body.next_cursor;
  } while (cursor);
  return seen;
}

describe('who may use the admin views', () => {
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/v1/admin/tasks'],
    ['GET', '/v1/admin/dead-letters'],
    ['POST', '/v1/admin/dead-letters/retry', { provider: 'who-p' }],
    ['POST', '/v1/admin/dead-letters/purge', { confirm: 'purge', provider: 'who-p' }],
    ['GET', '/v1/admin/stats'],
    ['POST', '/v1/admin/queue/clear', { confirm: 'clear', provider: 'who-p' }],
    ['GET', '/v1/admin/users'],
  ];

  it('refuses a user key with 403 ADMIN_REQUIRED on every route, and a bad key with 401; nothing changes', async () => {
    const queued = await seed(alice, 'who-p');
    const failed = await seed(alice, 'who-p', { status: 'failed', error: 'BOOM' });
    for (const [method, route, body] of routes) {
      for (const who of ['alice', 'bob'] as const) {
        const refused = await api<Problem>(easel.url, method, route, body, as(who));
        expect(refused.status, `${method} ${route}`).toBe(403);
        expect(refused.body.code).toBe('ADMIN_REQUIRED');
      }
      const bad = await api<Problem>(easel.url, method, route, body, {
        authorization: `Bearer easel_sk_${'x'.repeat(43)}`,
      });
      expect(bad.status, `${method} ${route}`).toBe(401);
      expect(bad.body.code).toBe('INVALID_API_KEY');
    }
    expect(await statusOf(queued)).toBe('queued');
    expect(await statusOf(failed)).toBe('failed');
    // The admin key, and the keyless local admin of local mode, get through.
    for (const [method, route, body] of routes) {
      if (method !== 'GET') continue;
      expect((await asAdmin(method, route, body)).status, route).toBe(200);
      expect((await api(easel.url, method, route)).status, route).toBe(200);
    }
  });
});

describe('GET /v1/admin/tasks', () => {
  let aliceTasks: string[];
  let bobTasks: string[];
  let middle: string;

  beforeAll(async () => {
    aliceTasks = [
      await seed(alice, 'list-a'),
      await seed(alice, 'list-b', { status: 'failed', error: 'UPSTREAM' }),
      await seed(alice, 'list-a', { status: 'succeeded' }),
    ];
    await new Promise((resolve) => setTimeout(resolve, 5));
    middle = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    bobTasks = [
      await seed(bob, 'list-a', { status: 'running' }),
      await seed(bob, 'list-b'),
      await seed(bob, 'list-a', { status: 'canceled' }),
    ];
  });

  const ids = (tasks: AdminTask[]) => tasks.map((task) => task.id);
  const newestFirst = (list: string[]) => [...list].sort().reverse();

  it("lists every user's tasks newest first, each with its user_id", async () => {
    const listed = await allPages('/v1/admin/tasks', 100);
    for (const id of [...aliceTasks, ...bobTasks]) expect(ids(listed)).toContain(id);
    expect(ids(listed)).toEqual(newestFirst(ids(listed)));
    const owner = new Map(listed.map((task) => [task.id, task.user_id]));
    for (const id of aliceTasks) expect(owner.get(id)).toBe(alice);
    for (const id of bobTasks) expect(owner.get(id)).toBe(bob);
  });

  it('filters by user, status, provider and creation time, alone and together', async () => {
    const listA = '/v1/admin/tasks?provider=list-a';
    expect(ids(await allPages(`/v1/admin/tasks?user_id=${alice}&provider=list-a`, 100))).toEqual(
      newestFirst([aliceTasks[0]!, aliceTasks[2]!]),
    );
    expect(ids(await allPages(listA, 100))).toEqual(
      newestFirst([aliceTasks[0]!, aliceTasks[2]!, bobTasks[0]!, bobTasks[2]!]),
    );
    expect(ids(await allPages(`${listA}&status=running`, 100))).toEqual([bobTasks[0]]);
    expect(ids(await allPages(`/v1/admin/tasks?provider=list-b&status=failed`, 100))).toEqual([aliceTasks[1]]);
    const after = encodeURIComponent(middle);
    expect(ids(await allPages(`${listA}&created_after=${after}`, 100))).toEqual(
      newestFirst([bobTasks[0]!, bobTasks[2]!]),
    );
    expect(ids(await allPages(`${listA}&created_before=${after}`, 100))).toEqual(
      newestFirst([aliceTasks[0]!, aliceTasks[2]!]),
    );
    expect(ids(await allPages(`/v1/admin/tasks?user_id=${bob}&created_before=${after}`, 100))).toEqual([]);
  });

  it('pages with next_cursor: every task once, in order, whatever the page size', async () => {
    const everything = ids(await allPages('/v1/admin/tasks', 100));
    for (const limit of [1, 2, 5]) expect(ids(await allPages('/v1/admin/tasks', limit))).toEqual(everything);
    const filtered = ids(await allPages('/v1/admin/tasks?provider=list-a', 1));
    expect(filtered).toHaveLength(4);
  });

  it('refuses bad filters by name and changes nothing', async () => {
    const cases: Array<[string, string, string]> = [
      ['created_after=yesterday', 'created_after', 'VALIDATION_FAILED'],
      ['created_before=2026-01-01', 'created_before', 'VALIDATION_FAILED'],
      ['limit=0', 'limit', 'VALIDATION_FAILED'],
      ['limit=101', 'limit', 'VALIDATION_FAILED'],
      ['cursor=abc', 'cursor', 'INVALID_CURSOR'],
      ['user_id=42', 'user_id', 'VALIDATION_FAILED'],
      ['status=lost', 'status', 'VALIDATION_FAILED'],
      ['colour=red', 'colour', 'VALIDATION_FAILED'],
    ];
    for (const [query, field, code] of cases) {
      const refused = await asAdmin<Problem>('GET', `/v1/admin/tasks?${query}`);
      expect(refused.status, query).toBe(400);
      expect(refused.body.code, query).toBe(code);
      expect(JSON.stringify(refused.body.errors), query).toContain(field);
    }
  });
});

describe('dead letters', () => {
  it('lists failed tasks only, filtered by provider, error code, user and time', async () => {
    const timeout = await seed(alice, 'dl-list', { status: 'failed', error: 'TIMEOUT' });
    const refused = await seed(bob, 'dl-list', { status: 'failed', error: 'REFUSED' });
    await seed(bob, 'dl-list', { status: 'succeeded' });
    await seed(bob, 'dl-list', { status: 'canceled' });
    const list = async (query: string) =>
      (await asAdmin<Page<AdminTask>>('GET', `/v1/admin/dead-letters?provider=dl-list${query}`)).body.data.map(
        (task) => task.id,
      );
    expect(await list('')).toEqual([refused, timeout]);
    expect(await list('&error_code=TIMEOUT')).toEqual([timeout]);
    expect(await list(`&user_id=${bob}`)).toEqual([refused]);
    expect(await list(`&user_id=${bob}&error_code=TIMEOUT`)).toEqual([]);
    expect(await list(`&created_after=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    const page = await asAdmin<Page<AdminTask>>('GET', '/v1/admin/dead-letters?provider=dl-list');
    expect(page.body.data[0]).toMatchObject({ user_id: bob, status: 'failed', error: { code: 'REFUSED' } });
  });

  it('retries by ids: failed ones go back to the queue with fresh attempts and a task:queued event; others are skipped', async () => {
    const failed = await seed(alice, 'dl-retry', { status: 'failed', error: 'TIMEOUT', attempt: 3 });
    const succeeded = await seed(alice, 'dl-retry', { status: 'succeeded' });
    const missing = crypto.randomUUID();
    const retried = await asAdmin<Outcome>('POST', '/v1/admin/dead-letters/retry', {
      ids: [failed, succeeded, missing],
    });
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ retried: 1, ids: [failed], more: false });
    expect(retried.body.skipped.sort()).toEqual([succeeded, missing].sort());
    const row = (await easel.pool.query('SELECT * FROM tasks WHERE id = $1', [failed])).rows[0];
    expect(row).toMatchObject({ status: 'queued', attempt: 0, error: null, finished_at: null, user_id: alice });
    expect(await eventsOf(failed, 'task:queued')).toBe(2);
    // The owner sees it queued again.
    expect((await api<AdminTask>(easel.url, 'GET', `/v1/tasks/${failed}`, undefined, as('alice'))).body.status).toBe(
      'queued',
    );
    // Again: it is no longer a dead letter.
    const again = await asAdmin<Outcome>('POST', '/v1/admin/dead-letters/retry', { ids: [failed] });
    expect(again.body).toMatchObject({ retried: 0, ids: [], skipped: [failed] });
  });

  it('retries by filter, at most `max` per call, saying when more are left', async () => {
    const timeouts = await seedMany(5, bob, 'dl-retry-f', { status: 'failed', error: 'TIMEOUT' });
    const other = await seed(bob, 'dl-retry-f', { status: 'failed', error: 'REFUSED' });
    const first = await asAdmin<Outcome>('POST', '/v1/admin/dead-letters/retry', {
      provider: 'dl-retry-f',
      error_code: 'TIMEOUT',
      max: 3,
    });
    expect(first.body).toMatchObject({ retried: 3, more: true });
    const second = await asAdmin<Outcome>('POST', '/v1/admin/dead-letters/retry', {
      provider: 'dl-retry-f',
      error_code: 'TIMEOUT',
      max: 3,
    });
    expect(second.body).toMatchObject({ retried: 2, more: false });
    expect([...first.body.ids, ...second.body.ids].sort()).toEqual([...timeouts].sort());
    expect(await statusOf(other)).toBe('failed');
  });

  it('refuses a retry that names nothing, or both ids and filters, by field; nothing changes', async () => {
    const failed = await seed(alice, 'dl-refuse', { status: 'failed', error: 'X' });
    for (const body of [{}, { max: 5 }, { ids: [failed], provider: 'dl-refuse' }, { ids: [] }, { ids: ['nope'] }]) {
      const refused = await asAdmin<Problem>('POST', '/v1/admin/dead-letters/retry', body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.code).toBe('VALIDATION_FAILED');
      expect(refused.body.errors?.length).toBeGreaterThan(0);
    }
    expect(await statusOf(failed)).toBe('failed');
  });

  it('purges only with confirm: "purge"; rows and their images leave, shared uploads and events stay', async () => {
    const withImage = await seed(alice, 'dl-purge', { status: 'failed', error: 'X' });
    const resultKey = await addResultImage(withImage);
    // Its thumbnail (migration 0015) sits beside it and must go with it.
    await storage.put(thumbnailKey(resultKey), Buffer.from('not really a webp'), 'image/webp');
    await easel.pool.query(
      `UPDATE task_images SET thumbnail_bytes = 17, thumbnail_width = 64, thumbnail_height = 64,
                              thumbnail_sha256 = 't' WHERE task_id = $1`,
      [withImage],
    );
    const ownInput = await addInputImage(withImage, alice, false);
    const fromUpload = await seed(bob, 'dl-purge', { status: 'failed', error: 'X' });
    const sharedKey = await addInputImage(fromUpload, bob, true);
    const queued = await seed(bob, 'dl-purge');
    expect([resultKey, thumbnailKey(resultKey), ownInput, sharedKey].every(stored)).toBe(true);

    for (const body of [{}, { confirm: 'yes' }, { confirm: 'PURGE', provider: 'dl-purge' }]) {
      const refused = await asAdmin<Problem>('POST', '/v1/admin/dead-letters/purge', body);
      expect(refused.status).toBe(400);
      expect(refused.body.code).toBe('VALIDATION_FAILED');
      expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'confirm', in: 'body' })]);
      expect(refused.body.detail).toContain('"purge"');
    }
    expect(await statusOf(withImage)).toBe('failed');
    expect(stored(resultKey)).toBe(true);

    const purged = await asAdmin<Outcome>('POST', '/v1/admin/dead-letters/purge', {
      confirm: 'purge',
      provider: 'dl-purge',
    });
    expect(purged.status).toBe(200);
    // images_deleted counts images and inputs; thumbnails go with their image, uncounted.
    expect(purged.body).toMatchObject({ purged: 2, images_deleted: 2, more: false });
    expect(purged.body.ids.sort()).toEqual([withImage, fromUpload].sort());
    expect(await statusOf(withImage)).toBeUndefined();
    expect(await statusOf(fromUpload)).toBeUndefined();
    expect(await statusOf(queued)).toBe('queued');
    const images = await easel.pool.query('SELECT 1 FROM task_images WHERE task_id = $1', [withImage]);
    expect(images.rows).toHaveLength(0);
    expect(stored(resultKey)).toBe(false);
    expect(stored(thumbnailKey(resultKey))).toBe(false);
    expect(stored(ownInput)).toBe(false);
    // The upload still holds this file; bob can use it again.
    expect(stored(sharedKey)).toBe(true);
    // Events age out with the event log, like any other.
    expect(await eventsOf(withImage, 'task:queued')).toBe(1);
    // The owner now finds no such task.
    expect((await api(easel.url, 'GET', `/v1/tasks/${withImage}`, undefined, as('alice'))).status).toBe(404);
  });

  it('purges by ids, skipping what is not failed', async () => {
    const failed = await seed(alice, 'dl-purge-ids', { status: 'failed', error: 'X' });
    const running = await seed(alice, 'dl-purge-ids', { status: 'running' });
    const purged = await asAdmin<Outcome>('POST', '/v1/admin/dead-letters/purge', {
      confirm: 'purge',
      ids: [failed, running],
    });
    expect(purged.body).toMatchObject({ purged: 1, ids: [failed], skipped: [running] });
    expect(await statusOf(running)).toBe('running');
  });

  it('two admins purging at once split the work: each task purged once, all images gone, no error', async () => {
    const ids = await seedMany(240, bob, 'dl-concurrent', { status: 'failed', error: 'X' });
    const keys = await Promise.all(ids.map(addResultImage));
    const purge = () =>
      asAdmin<Outcome>('POST', '/v1/admin/dead-letters/purge', { confirm: 'purge', provider: 'dl-concurrent' });
    const [one, two] = await Promise.all([purge(), purge()]);
    expect(one.status).toBe(200);
    expect(two.status).toBe(200);
    const both = [...one.body.ids, ...two.body.ids];
    expect(new Set(both).size).toBe(both.length);
    // A batch skips rows the other holds; what is left when both finish is purged by a third call.
    const rest = await purge();
    expect([...both, ...rest.body.ids].sort()).toEqual([...ids].sort());
    expect(one.body.images_deleted! + two.body.images_deleted! + rest.body.images_deleted!).toBe(240);
    expect(keys.filter(stored)).toEqual([]);
    const left = await easel.pool.query(`SELECT count(*)::int AS n FROM tasks WHERE provider = 'dl-concurrent'`);
    expect(left.rows[0].n).toBe(0);
  });

  it('a file that cannot be deleted is reported and left; the rows go all the same', async () => {
    const id = await seed(alice, 'dl-storage-fault', { status: 'failed', error: 'X' });
    const key = await addResultImage(id);
    const failing: Storage = {
      ...storage,
      delete: async () => {
        throw new Error('disk is read-only');
      },
    };
    const reported: string[] = [];
    const outcome = await purgeDeadLetters(easel.pool, failing, { ids: [id] }, (failedKey) => reported.push(failedKey));
    expect(outcome).toMatchObject({ ids: [id], imagesDeleted: 0 });
    expect(reported).toEqual([key]);
    expect(await statusOf(id)).toBeUndefined();
    expect(stored(key)).toBe(true);
    // Left queued for `easel storage gc` (docs/retention.md), with its thumbnail's key.
    const { rows } = await easel.pool.query<{ key: string }>(
      'SELECT key FROM storage_deletions WHERE key = ANY($1::text[]) ORDER BY key',
      [[key, `${key}.thumb.webp`]],
    );
    expect(rows.map((row) => row.key)).toEqual([key, `${key}.thumb.webp`]);
  });

  it('two admins retrying at once requeue each task exactly once', async () => {
    const ids = await seedMany(150, alice, 'dl-concurrent-retry', { status: 'failed', error: 'X' });
    const retry = () => asAdmin<Outcome>('POST', '/v1/admin/dead-letters/retry', { provider: 'dl-concurrent-retry' });
    const [one, two] = await Promise.all([retry(), retry()]);
    const rest = await retry();
    const all = [...one.body.ids, ...two.body.ids, ...rest.body.ids];
    expect(all.sort()).toEqual([...ids].sort());
    const events = await easel.pool.query(
      `SELECT task_id, count(*)::int AS n FROM task_events WHERE task_id = ANY($1::uuid[]) AND type = 'task:queued'
       GROUP BY task_id`,
      [ids],
    );
    // One event from the submit, one from the retry.
    expect(events.rows.every((row) => row.n === 2)).toBe(true);
    expect(events.rows).toHaveLength(150);
  });
});

describe('POST /v1/admin/queue/clear', () => {
  it('refuses without confirm: "clear" and changes nothing', async () => {
    const queued = await seed(alice, 'clear-refused');
    for (const body of [{}, { confirm: 'yes' }, { provider: 'clear-refused' }]) {
      const refused = await asAdmin<Problem>('POST', '/v1/admin/queue/clear', body);
      expect(refused.status).toBe(400);
      expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'confirm' })]);
    }
    // No body at all, a body that is not JSON, and unknown fields are refused the same way.
    const bare = await fetch(`${easel.url}/v1/admin/queue/clear`, { method: 'POST', headers: as('admin') });
    expect(bare.status).toBe(400);
    const text = await fetch(`${easel.url}/v1/admin/queue/clear`, {
      method: 'POST',
      headers: { ...as('admin'), 'content-type': 'text/plain' },
      body: 'confirm=clear',
    });
    expect(text.status).toBe(415);
    const unknown = await asAdmin<Problem>('POST', '/v1/admin/queue/clear', { confirm: 'clear', everything: true });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors?.[0]?.field).toBe('everything');
    expect(await statusOf(queued)).toBe('queued');
  });

  it("cancels one provider's queued tasks (not deleted), each with task:canceled; running and others untouched", async () => {
    const queued = [...(await seedMany(3, alice, 'clear-one')), ...(await seedMany(2, bob, 'clear-one'))];
    const retrying = await seed(bob, 'clear-one', { attempt: 1, error: 'RATE_LIMITED' });
    const running = await seed(alice, 'clear-one', { status: 'running' });
    const elsewhere = await seed(alice, 'clear-other');
    const cleared = await asAdmin<{ canceled: number }>('POST', '/v1/admin/queue/clear', {
      confirm: 'clear',
      provider: 'clear-one',
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.canceled).toBe(6);
    for (const id of [...queued, retrying]) {
      expect(await statusOf(id)).toBe('canceled');
      expect(await eventsOf(id, 'task:canceled')).toBe(1);
    }
    expect(await statusOf(running)).toBe('running');
    expect(await eventsOf(running, 'task:canceled')).toBe(0);
    expect(await statusOf(elsewhere)).toBe('queued');
    // Canceled tasks can be retried by their owner like any other.
    const retried = await api<AdminTask>(easel.url, 'POST', `/v1/tasks/${queued[0]}/retry`, undefined, as('alice'));
    expect(retried.status).toBe(202);
  });

  it('cancels every provider without `provider`, and two clears at once cancel each task once', async () => {
    const queued = [...(await seedMany(30, alice, 'clear-all-a')), ...(await seedMany(30, bob, 'clear-all-b'))];
    const clear = () => asAdmin<{ canceled: number }>('POST', '/v1/admin/queue/clear', { confirm: 'clear' });
    const [one, two] = await Promise.all([clear(), clear()]);
    expect(one.status).toBe(200);
    expect(two.status).toBe(200);
    expect(one.body.canceled + two.body.canceled).toBeGreaterThanOrEqual(queued.length);
    for (const id of queued) expect(await eventsOf(id, 'task:canceled')).toBe(1);
    const left = await easel.pool.query(`SELECT count(*)::int AS n FROM tasks WHERE status = 'queued'`);
    expect(left.rows[0].n).toBe(0);
  });
});

describe('GET /v1/admin/users', () => {
  it('lists users with their task counts by status and their balance', async () => {
    const carol = await createUser(easel.pool, 'carol');
    const dave = await createUser(easel.pool, 'dave, deleted');
    await easel.pool.query(`UPDATE users SET deleted_at = now() - interval '3 days' WHERE id = $1`, [dave]);
    await seed(carol, 'users-p');
    await seedMany(2, carol, 'users-p', { status: 'failed', error: 'X' });
    await seed(carol, 'users-p', { status: 'succeeded' });
    const topUp = await asAdmin('POST', `/v1/users/${carol}/credits`, { amount: 2.5, reason: 'admin view' });
    expect(topUp.status).toBe(201);
    interface User {
      id: string;
      name: string;
      role: string;
      tasks: Record<string, number>;
      balance: number;
      deleted_at: string | null;
    }
    const users: User[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: Page<User> } = await asAdmin<Page<User>>(
        'GET',
        `/v1/admin/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      users.push(...page.body.data);
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(users.map((user) => user.id)).toEqual(users.map((user) => user.id).sort());
    const byId = new Map(users.map((user) => [user.id, user]));
    expect(byId.get(carol)).toEqual(
      expect.objectContaining({
        name: 'carol',
        role: 'user',
        tasks: { queued: 1, running: 0, succeeded: 1, failed: 2, canceled: 0 },
        balance: 2.5,
      }),
    );
    expect(byId.get(carol)?.deleted_at).toBeNull();
    expect(Date.parse(byId.get(dave)!.deleted_at!)).toBeLessThan(Date.now() - 2 * 86_400_000);
    expect(byId.get(adminId)?.role).toBe('admin');
    expect(byId.get(LOCAL_USER_ID)?.role).toBe('admin');
    const counted = await easel.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE user_id = $1`, [
      alice,
    ]);
    const aliceCounts = Object.values(byId.get(alice)!.tasks).reduce((sum, n) => sum + n, 0);
    expect(aliceCounts).toBe(counted.rows[0]!.n);
  });
});

describe('GET /v1/admin/stats, on a database of its own', () => {
  let fresh: TestEasel;
  beforeAll(async () => {
    fresh = await startTestEasel(await createTestDatabase(), { roles: { api: true, worker: false } });
  });
  afterAll(async () => {
    await fresh?.stop();
  });

  it('counts queued, running, retrying and dead per provider and priority, and processed and failed per day', async () => {
    const put = async (provider: string, priority: number, status: string, extra: string, daysAgo = 0) => {
      const task = await enqueueTask(fresh.pool, { userId: LOCAL_USER_ID, provider, priority });
      await fresh.pool.query(
        `UPDATE tasks SET status = $2, ${extra}
           finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'canceled')
                              THEN date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                   + interval '1 minute' - make_interval(days => $3) END
         WHERE id = $1`,
        [task.id, status, daysAgo],
      );
    };
    // alpha/5: 2 queued, 1 retrying (attempt 1), 1 retrying (error kept), 1 running, 1 dead.
    await put('alpha', 5, 'queued', '');
    await put('alpha', 5, 'queued', '');
    await put('alpha', 5, 'queued', 'attempt = 1,');
    await put('alpha', 5, 'queued', `error = '{"code":"RATE_LIMITED","message":"m"}',`);
    await put('alpha', 5, 'running', 'attempt = 1,');
    await put('alpha', 5, 'failed', `error = '{"code":"X","message":"m"}',`);
    // alpha/9: 1 queued. beta/5: 2 dead (yesterday and 3 days ago).
    await put('alpha', 9, 'queued', '');
    await put('beta', 5, 'failed', `error = '{"code":"X","message":"m"}',`, 1);
    await put('beta', 5, 'failed', `error = '{"code":"X","message":"m"}',`, 3);
    // Finished history: today 2 succeeded; yesterday 1 succeeded; 10 days ago 4 succeeded (outside 7 days).
    await put('gamma', 5, 'succeeded', '');
    await put('gamma', 5, 'succeeded', '');
    await put('gamma', 5, 'succeeded', '', 1);
    for (let i = 0; i < 4; i++) await put('gamma', 5, 'succeeded', '', 10);
    await put('gamma', 5, 'canceled', '');

    interface Stats {
      queues: Array<Record<string, unknown>>;
      totals: Record<string, number>;
      days: Array<{ date: string; processed: number; failed: number }>;
    }
    const stats = await api<Stats>(fresh.url, 'GET', '/v1/admin/stats');
    expect(stats.status).toBe(200);
    expect(stats.body.queues).toEqual([
      { provider: 'alpha', priority: 9, queued: 1, running: 0, retrying: 0, dead: 0 },
      { provider: 'alpha', priority: 5, queued: 2, running: 1, retrying: 2, dead: 1 },
      { provider: 'beta', priority: 5, queued: 0, running: 0, retrying: 0, dead: 2 },
    ]);
    expect(stats.body.totals).toEqual({ queued: 3, running: 1, retrying: 2, dead: 3 });
    const today = new Date().toISOString().slice(0, 10);
    const { rows } = await fresh.pool.query<{ today: string; yesterday: string; three: string }>(
      `SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS today,
              to_char(now() AT TIME ZONE 'UTC' - interval '1 day', 'YYYY-MM-DD') AS yesterday,
              to_char(now() AT TIME ZONE 'UTC' - interval '3 days', 'YYYY-MM-DD') AS three`,
    );
    const { yesterday, three } = rows[0]!;
    expect(rows[0]!.today).toBe(today);
    expect(stats.body.days).toHaveLength(7);
    expect(stats.body.days[0]).toEqual({ date: today, processed: 3, failed: 1 });
    expect(stats.body.days[1]).toEqual({ date: yesterday, processed: 2, failed: 1 });
    expect(stats.body.days[3]).toEqual({ date: three, processed: 1, failed: 1 });
    expect(stats.body.days.reduce((sum, day) => sum + day.processed, 0)).toBe(6);

    const longer = await api<Stats>(fresh.url, 'GET', '/v1/admin/stats?days=11');
    expect(longer.body.days).toHaveLength(11);
    expect(longer.body.days[10]).toMatchObject({ processed: 4, failed: 0 });
    for (const days of ['0', '91', 'x']) {
      const refused = await api<Problem>(fresh.url, 'GET', `/v1/admin/stats?days=${days}`);
      expect(refused.status, days).toBe(400);
      expect(refused.body.errors?.[0]?.field).toBe('days');
    }
  });
});
