import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, generateKey, hashKey } from '../../src/auth/api-keys.js';
import { ensureAdminKey } from '../../src/auth/bootstrap.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { api, startTestEasel, testLogger, type TestEasel } from '../helpers/easel.js';

interface Problem {
  code: string;
}
interface Me {
  user: { id: string; role: string; name: string };
  authenticated_by: string;
  key: { id: string; display: string } | null;
}

const running: TestEasel[] = [];
async function start(databaseUrl: string, env: Record<string, string>): Promise<TestEasel> {
  const easel = await startTestEasel(databaseUrl, { roles: { api: true, worker: false }, env });
  running.push(easel);
  return easel;
}
afterEach(async () => {
  for (const easel of running.splice(0)) await easel.stop();
});

describe('EASEL_AUTH=local (the default on loopback)', () => {
  let databaseUrl: string;
  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
  });

  it('acts as the local admin without a key, as a key’s user with one, and refuses a bad key', async () => {
    const easel = await start(databaseUrl, {});
    expect(easel.config.authMode).toBe('local');
    const keyless = await api<Me>(easel.url, 'GET', '/v1/me');
    expect(keyless.body).toMatchObject({
      user: { id: LOCAL_USER_ID, role: 'admin' },
      authenticated_by: 'local',
      key: null,
    });
    // Keyless is an admin here: it may manage users (how `npm start` stays set-up free).
    expect((await api(easel.url, 'GET', '/v1/users')).status).toBe(200);

    const userId = await createUser(easel.pool, 'keyed');
    const { key, row } = await createApiKey(easel.pool, userId, 'k');
    const keyed = await api<Me>(easel.url, 'GET', '/v1/me', undefined, { authorization: `Bearer ${key}` });
    expect(keyed.body).toMatchObject({ user: { id: userId, role: 'user' }, authenticated_by: 'api_key' });
    expect(keyed.body.key).toEqual({ id: row.id, display: row.display, name: 'k' });
    // A key that is sent is never quietly ignored, even where no key is needed.
    for (const authorization of [`Bearer easel_sk_${'0'.repeat(43)}`, 'Bearer nonsense', 'Basic dXNlcjpwdw==']) {
      const refused = await api<Problem>(easel.url, 'GET', '/v1/tasks', undefined, { authorization });
      expect(refused.status, authorization).toBe(401);
      expect(refused.body.code).toBe('INVALID_API_KEY');
      expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // A user's key in local mode is that user: admin routes stay closed to them.
    const closed = await api<Problem>(easel.url, 'GET', '/v1/users', undefined, { authorization: `Bearer ${key}` });
    expect(closed.status).toBe(403);
  });
});

describe('EASEL_AUTH=required', () => {
  it('answers 401 AUTH_REQUIRED with WWW-Authenticate without a key, and leaves the public routes open', async () => {
    const easel = await start(await createTestDatabase(), { EASEL_AUTH: 'required' });
    for (const route of ['/v1/tasks', '/v1/me', '/v1/providers', '/v1/events']) {
      const refused = await api<Problem>(easel.url, 'GET', route);
      expect(refused.status, route).toBe(401);
      expect(refused.body.code).toBe('AUTH_REQUIRED');
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="easel"');
      expect(refused.headers.get('content-type')).toContain('application/problem+json');
    }
    // A submit without a key writes nothing.
    expect((await api<Problem>(easel.url, 'POST', '/v1/tasks', { prompt: 'no key' })).status).toBe(401);
    expect(Number((await easel.pool.query('SELECT count(*) AS n FROM tasks')).rows[0].n)).toBe(0);
    for (const route of ['/healthz', '/readyz', '/openapi.json', '/docs', '/']) {
      const open = await fetch(easel.url + route);
      expect(open.status, route).toBe(200);
    }
    // Public routes ignore even a bad key: a health probe never depends on one.
    expect((await api(easel.url, 'GET', '/healthz', undefined, { authorization: 'Bearer wrong' })).status).toBe(200);
  });
});

describe('EASEL_ADMIN_KEY', () => {
  let databaseUrl: string;
  const { key } = generateKey();
  const auth = { authorization: `Bearer ${key}` };
  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
  });

  it('makes one admin on the first start and nothing more on the next, even from several at once', async () => {
    const first = await start(databaseUrl, { EASEL_AUTH: 'required', EASEL_ADMIN_KEY: key });
    const me = await api<Me>(first.url, 'GET', '/v1/me', undefined, auth);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user: { role: 'admin', name: 'admin' }, authenticated_by: 'api_key' });
    await first.stop();
    running.splice(0);

    const second = await start(databaseUrl, { EASEL_AUTH: 'required', EASEL_ADMIN_KEY: key });
    await Promise.all(Array.from({ length: 4 }, () => ensureAdminKey(second.pool, key, testLogger())));
    expect((await api<Me>(second.url, 'GET', '/v1/me', undefined, auth)).body.user.id).toBe(me.body.user.id);
    const { rows } = await second.pool.query(
      `SELECT (SELECT count(*) FROM api_keys WHERE key_hash = $1)::int AS keys,
              (SELECT count(*) FROM users WHERE role = 'admin' AND id <> $2)::int AS admins`,
      [hashKey(key), LOCAL_USER_ID],
    );
    expect(rows[0]).toEqual({ keys: 1, admins: 1 });
    // The stored key is its hash only.
    const stored = await second.pool.query('SELECT * FROM api_keys WHERE key_hash = $1', [hashKey(key)]);
    expect(JSON.stringify(stored.rows)).not.toContain(key);
  });

  it('a revoked bootstrap key stays revoked across restarts', async () => {
    const easel = await start(databaseUrl, { EASEL_AUTH: 'required', EASEL_ADMIN_KEY: key });
    const me = await api<Me>(easel.url, 'GET', '/v1/me', undefined, auth);
    // Its owner revokes it (say, after a leak): the variable must not bring it back.
    const revoked = await api(easel.url, 'DELETE', `/v1/keys/${me.body.key!.id}`, undefined, auth);
    expect(revoked.status).toBe(200);
    expect((await api<Problem>(easel.url, 'GET', '/v1/me', undefined, auth)).body.code).toBe('INVALID_API_KEY');
    await easel.stop();
    running.splice(0);

    const again = await start(databaseUrl, { EASEL_AUTH: 'required', EASEL_ADMIN_KEY: key });
    const refused = await api<Problem>(again.url, 'GET', '/v1/me', undefined, auth);
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe('INVALID_API_KEY');
    const { rows } = await again.pool.query('SELECT count(*)::int AS n FROM api_keys WHERE key_hash = $1', [
      hashKey(key),
    ]);
    expect(rows[0].n).toBe(1);
  });
});
