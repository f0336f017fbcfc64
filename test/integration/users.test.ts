import net from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { eventually, killAll, spawnEasel, type EaselProcess } from '../helpers/processes.js';

interface User {
  id: string;
  email: string | null;
  name: string;
  role: 'user' | 'admin';
  created_at: string;
  updated_at: string;
}
interface Key {
  id: string;
  user_id: string;
  display: string;
  name: string;
  created_at: string;
  key?: string;
  revoked_at?: string | null;
  last_used_at?: string | null;
}
interface Problem {
  code: string;
  detail: string;
  existing_id?: string;
}

let easel: TestEasel;
let databaseUrl: string;
let adminKey: string;
const processes: EaselProcess[] = [];
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const as = <T = User>(key: string, method: string, route: string, body?: unknown) =>
  api<T>(easel.url, method, route, body, bearer(key));

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl, { roles: { api: true, worker: false }, env: { EASEL_AUTH: 'required' } });
  const { rows } = await easel.pool.query<{ id: string }>(
    `INSERT INTO users (id, name, role) VALUES (gen_random_uuid(), 'root', 'admin') RETURNING id`,
  );
  adminKey = (await createApiKey(easel.pool, rows[0]!.id, 'test admin')).key;
});
afterAll(async () => {
  await killAll(processes);
  await easel?.stop();
});

async function newUser(body: Record<string, unknown>): Promise<User> {
  const created = await as(adminKey, 'POST', '/v1/users', body);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}
async function newKey(key: string, userId: string, name?: string): Promise<Key & { key: string }> {
  const created = await as<Key & { key: string }>(key, 'POST', `/v1/users/${userId}/keys`, name ? { name } : {});
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

describe('users', () => {
  it('creates a user (role user by default) and refuses a second live user with that email in any case', async () => {
    const ada = await newUser({ email: 'Ada@Example.com', name: 'Ada' });
    expect(ada).toMatchObject({ email: 'Ada@Example.com', name: 'Ada', role: 'user' });
    const again = await as<Problem>(adminKey, 'POST', '/v1/users', { email: 'ada@EXAMPLE.com', name: 'Other' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'USER_EXISTS', existing_id: ada.id });
    expect(again.headers.get('content-type')).toContain('application/problem+json');
  });

  it('refuses bad bodies with 400 and writes nothing', async () => {
    const before = Number((await easel.pool.query('SELECT count(*) AS n FROM users')).rows[0].n);
    for (const body of [
      {},
      { name: '' },
      { name: 'x', role: 'root' },
      { name: 'x', email: 'no-at' },
      { name: 'x', extra: 1 },
    ]) {
      const refused = await as<Problem>(adminKey, 'POST', '/v1/users', body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.code).toBe('VALIDATION_FAILED');
    }
    expect(Number((await easel.pool.query('SELECT count(*) AS n FROM users')).rows[0].n)).toBe(before);
  });

  it('gives two concurrent creates with one email exactly one user', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        as<Problem>(adminKey, 'POST', '/v1/users', { email: 'race@example.com', name: `r${i}` }),
      ),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409).every((a) => a.body.code === 'USER_EXISTS')).toBe(true);
  });

  it('finds a user by email, case-insensitively, and lists with a cursor', async () => {
    const found = await as<{ data: User[] }>(adminKey, 'GET', '/v1/users?email=ADA%40example.COM');
    expect(found.body.data.map((u) => u.name)).toEqual(['Ada']);
    expect((await as<{ data: User[] }>(adminKey, 'GET', '/v1/users?email=nobody%40example.com')).body.data).toEqual([]);
    for (let i = 0; i < 5; i++) await newUser({ name: `page ${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { data: User[]; next_cursor: string | null } } = await as(
        adminKey,
        'GET',
        `/v1/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((u) => u.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    const { rows } = await easel.pool.query<{ id: string }>(
      'SELECT id FROM users WHERE deleted_at IS NULL ORDER BY id',
    );
    expect(seen).toEqual(rows.map((r) => r.id));
    expect((await as<Problem>(adminKey, 'GET', '/v1/users?cursor=nope')).body.code).toBe('INVALID_CURSOR');
    expect((await as<Problem>(adminKey, 'GET', '/v1/users?limit=0')).status).toBe(400);
  });

  it('lets a user read themself but no one else (404, never 403), and keeps user routes to admins', async () => {
    const bob = await newUser({ name: 'Bob' });
    const carol = await newUser({ name: 'Carol' });
    const bobKey = (await newKey(adminKey, bob.id)).key;
    expect((await as(bobKey, 'GET', `/v1/users/${bob.id}`)).body).toMatchObject({ id: bob.id, name: 'Bob' });
    const other = await as<Problem>(bobKey, 'GET', `/v1/users/${carol.id}`);
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('USER_NOT_FOUND');
    expect((await as<Problem>(bobKey, 'GET', `/v1/users/${crypto.randomUUID()}`)).body.code).toBe('USER_NOT_FOUND');
    for (const [method, route, body] of [
      ['GET', '/v1/users', undefined],
      ['POST', '/v1/users', { name: 'sneaky' }],
      ['PATCH', `/v1/users/${bob.id}`, { role: 'admin' }],
      ['DELETE', `/v1/users/${carol.id}`, undefined],
      // The admin check comes before validation: a non-admin learns nothing of the body rules.
      ['POST', '/v1/users', { bad: true }],
    ] as const) {
      const refused = await as<Problem>(bobKey, method, route, body);
      expect(refused.status, `${method} ${route}`).toBe(403);
      expect(refused.body.code).toBe('ADMIN_REQUIRED');
    }
    expect((await as(adminKey, 'GET', `/v1/users/${bob.id}`)).body.role).toBe('user');
  });

  it('updates name, email and role; an email taken by another live user is 409', async () => {
    const dan = await newUser({ name: 'Dan', email: 'dan@example.com' });
    const changed = await as(adminKey, 'PATCH', `/v1/users/${dan.id}`, { name: 'Daniel', role: 'admin' });
    expect(changed.body).toMatchObject({ name: 'Daniel', role: 'admin', email: 'dan@example.com' });
    const taken = await as<Problem>(adminKey, 'PATCH', `/v1/users/${dan.id}`, { email: 'ADA@example.com' });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('USER_EXISTS');
    // Its own email in another case is no conflict.
    expect((await as(adminKey, 'PATCH', `/v1/users/${dan.id}`, { email: 'DAN@example.com' })).body.email).toBe(
      'DAN@example.com',
    );
    expect((await as(adminKey, 'PATCH', `/v1/users/${dan.id}`, { email: null })).body.email).toBeNull();
    expect((await as<Problem>(adminKey, 'PATCH', `/v1/users/${dan.id}`, {})).status).toBe(400);
    expect((await as<Problem>(adminKey, 'PATCH', `/v1/users/${crypto.randomUUID()}`, { name: 'x' })).status).toBe(404);
  });

  it('soft-deletes: tasks stay, keys stop at once, the email is free again, and the user is gone from views', async () => {
    const eve = await newUser({ name: 'Eve', email: 'eve@example.com' });
    const eveKey = (await newKey(adminKey, eve.id)).key;
    const task = await as<{ id: string }>(eveKey, 'POST', '/v1/tasks', { prompt: 'kept for the record' });
    expect(task.status).toBe(202);
    expect((await as(adminKey, 'DELETE', `/v1/users/${eve.id}`)).status).toBe(204);
    const refused = await as<Problem>(eveKey, 'GET', '/v1/me');
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe('INVALID_API_KEY');
    expect((await as<Problem>(adminKey, 'GET', `/v1/users/${eve.id}`)).status).toBe(404);
    expect((await as<Problem>(adminKey, 'DELETE', `/v1/users/${eve.id}`)).status).toBe(404);
    expect((await as(adminKey, 'GET', `/v1/tasks/${task.body.id}`)).status).toBe(200);
    const { rows } = await easel.pool.query('SELECT deleted_at FROM users WHERE id = $1', [eve.id]);
    expect(rows[0].deleted_at).not.toBeNull();
    await newUser({ name: 'New Eve', email: 'eve@example.com' });
  });

  it('never deletes or demotes the local user, nor the last admin', async () => {
    const local = await as<Problem>(adminKey, 'DELETE', `/v1/users/${LOCAL_USER_ID}`);
    expect(local.status).toBe(409);
    expect(local.body.code).toBe('LOCAL_USER_PROTECTED');
    const demote = await as<Problem>(adminKey, 'PATCH', `/v1/users/${LOCAL_USER_ID}`, { role: 'user' });
    expect(demote.body.code).toBe('LOCAL_USER_PROTECTED');

    // Leave exactly two admins besides the local one, then try to delete both at once.
    await easel.pool.query(`UPDATE users SET role = 'user' WHERE role = 'admin' AND id <> $1 AND name <> 'root'`, [
      LOCAL_USER_ID,
    ]);
    const second = await newUser({ name: 'Second admin', role: 'admin' });
    const { rows } = await easel.pool.query<{ id: string }>(`SELECT id FROM users WHERE name = 'root'`);
    const root = rows[0]!.id;
    const secondKey = (await newKey(adminKey, second.id)).key;
    const both = await Promise.all([
      as<Problem>(adminKey, 'DELETE', `/v1/users/${second.id}`),
      as<Problem>(secondKey, 'DELETE', `/v1/users/${root}`),
    ]);
    expect(both.map((a) => a.status).sort()).toEqual([204, 409]);
    expect(both.find((a) => a.status === 409)!.body.code).toBe('LAST_ADMIN');
    const [survivorKey, survivor] = both[0]!.status === 204 ? [adminKey, root] : [secondKey, second.id];
    const last = await as<Problem>(survivorKey, 'PATCH', `/v1/users/${survivor}`, { role: 'user' });
    expect(last.status).toBe(409);
    expect(last.body.code).toBe('LAST_ADMIN');
    if (survivorKey !== adminKey) adminKey = survivorKey;
  });
});

describe('/v1/me', () => {
  it('says who the caller is and by which key (never the key itself)', async () => {
    const fay = await newUser({ name: 'Fay', email: 'fay@example.com' });
    const created = await newKey(adminKey, fay.id, 'laptop');
    const me = await as<{ user: User; authenticated_by: string; key: Record<string, string> }>(
      created.key,
      'GET',
      '/v1/me',
    );
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      user: expect.objectContaining({ id: fay.id, role: 'user', email: 'fay@example.com' }),
      authenticated_by: 'api_key',
      key: { id: created.id, display: created.display, name: 'laptop' },
    });
    expect(JSON.stringify(me.body)).not.toContain(created.key);
  });
});

describe('API keys', () => {
  it('shows a key once, lists keys without key or hash, and lets a user make their own', async () => {
    const gus = await newUser({ name: 'Gus' });
    const first = await newKey(adminKey, gus.id, 'ci');
    expect(first.key).toMatch(/^easel_sk_[A-Za-z0-9_-]{43}$/);
    expect(first.display).toBe(first.key.slice(0, 17));
    expect(first).toMatchObject({ user_id: gus.id, name: 'ci' });
    const own = await newKey(first.key, gus.id);
    expect(own.name).toBe('');
    const listed = await as<{ data: Key[] }>(first.key, 'GET', `/v1/users/${gus.id}/keys`);
    expect(listed.body.data.map((k) => k.id)).toEqual([first.id, own.id]);
    const text = JSON.stringify(listed.body);
    expect(text).not.toContain(first.key);
    expect(text).not.toContain('key_hash');
    const { rows } = await easel.pool.query<{ key_hash: string }>('SELECT key_hash FROM api_keys WHERE id = $1', [
      first.id,
    ]);
    expect(text).not.toContain(rows[0]!.key_hash);
  });

  it("answers 404 for another user's keys and for revoking another user's key", async () => {
    const hal = await newUser({ name: 'Hal' });
    const ivy = await newUser({ name: 'Ivy' });
    const halKey = await newKey(adminKey, hal.id);
    const ivyKey = await newKey(adminKey, ivy.id);
    expect((await as<Problem>(halKey.key, 'POST', `/v1/users/${ivy.id}/keys`, {})).body.code).toBe('USER_NOT_FOUND');
    expect((await as<Problem>(halKey.key, 'GET', `/v1/users/${ivy.id}/keys`)).body.code).toBe('USER_NOT_FOUND');
    const revoke = await as<Problem>(halKey.key, 'DELETE', `/v1/keys/${ivyKey.id}`);
    expect(revoke.status).toBe(404);
    expect(revoke.body.code).toBe('KEY_NOT_FOUND');
    expect((await as(ivyKey.key, 'GET', '/v1/me')).status).toBe(200);
    expect((await as<Problem>(adminKey, 'DELETE', `/v1/keys/${crypto.randomUUID()}`)).body.code).toBe('KEY_NOT_FOUND');
  });

  it('revokes at once on every API process, and a second revocation keeps the first time', async () => {
    // A second API as its own OS process on the same database: no shared memory, no cache to clear.
    const port = await freePort();
    const other = spawnEasel(['api'], {
      DATABASE_URL: databaseUrl,
      EASEL_DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'easel-data-')),
      HOST: '127.0.0.1',
      PORT: String(port),
      EASEL_AUTH: 'required',
    });
    processes.push(other);
    await eventually(
      'the second API to listen',
      async () => other.output().includes('Easel API listening'),
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${other.output()}`);
    });
    const otherUrl = `http://127.0.0.1:${port}`;
    const jo = await newUser({ name: 'Jo' });
    const key = await newKey(adminKey, jo.id);
    expect((await api(otherUrl, 'GET', '/v1/me', undefined, bearer(key.key))).status).toBe(200);
    expect((await api(easel.url, 'GET', '/v1/me', undefined, bearer(key.key))).status).toBe(200);

    const revoked = await as<Key>(key.key, 'DELETE', `/v1/keys/${key.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).not.toBeNull();
    // The very next request, on either process, is refused.
    for (const url of [otherUrl, easel.url]) {
      const refused = await api<Problem>(url, 'GET', '/v1/me', undefined, bearer(key.key));
      expect(refused.status).toBe(401);
      expect(refused.body.code).toBe('INVALID_API_KEY');
      expect(refused.headers.get('www-authenticate')).toContain('Bearer');
    }
    const again = await as<Key>(adminKey, 'DELETE', `/v1/keys/${key.id}`);
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
