import type { Static } from '@sinclair/typebox';
import type { CredentialSchema } from '../../src/api/routes/admin-credentials.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { readCredentialSecret } from '../../src/credentials/store.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';

const KEY = randomBytes(32);
const SECRET = 'r8_AdminRouteSecret0001';

type Credential = Static<typeof CredentialSchema>;
interface Problem {
  code: string;
  detail: string;
  existing_id?: string;
  errors?: Array<{ field: string; code: string }>;
}

let easel: TestEasel;
let databaseUrl: string;
const admin = <T = Credential>(method: string, route: string, body?: unknown) =>
  api<T>(easel.url, method, `/v1/admin/credentials${route}`, body);
/** The state the list view gives a credential (what claims see as usable is `active`). */
const listedState = async (id: string) =>
  (await admin<{ data: Credential[] }>('GET', '?provider=replicate')).body.data.find((row) => row.id === id)?.state;
const count = async () => Number((await easel.pool.query('SELECT count(*) AS n FROM credentials')).rows[0].n);

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl, {
    roles: { api: true, worker: false },
    env: { EASEL_SECRET_KEY: KEY.toString('hex') },
  });
});
afterAll(async () => {
  await easel?.stop();
});

describe('admin credential routes', () => {
  let id: string;

  it('adds a credential: 201 with the view, the secret encrypted and never answered', async () => {
    const added = await admin('POST', '', {
      provider: 'replicate',
      secret: SECRET,
      label: 'team key',
      concurrency: 3,
      daily_limit: 100,
      daily_reset_utc_hour: 7,
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    id = added.body.id;
    expect(added.body).toMatchObject({
      provider: 'replicate',
      label: 'team key',
      secret_hint: '…0001',
      state: 'active',
      concurrency: 3,
      used_today: 0,
      daily_limit: 100,
      daily_reset_utc_hour: 7,
      cooldown_until: null,
      disabled_reason: null,
      last_error: null,
      last_used_at: null,
    });
    const reset = new Date(added.body.next_reset_at);
    expect(reset.getUTCHours()).toBe(7);
    expect(reset.getTime() - Date.now()).toBeGreaterThan(0);
    expect(reset.getTime() - Date.now()).toBeLessThanOrEqual(24 * 3600 * 1000);
    expect(JSON.stringify(added.body)).not.toContain(SECRET);

    const stored = (await easel.pool.query('SELECT * FROM credentials WHERE id = $1', [id])).rows[0];
    expect(Buffer.from(stored.secret_ciphertext).includes(Buffer.from(SECRET))).toBe(false);
    expect(JSON.stringify(stored)).not.toContain(SECRET);
    expect((await readCredentialSecret(easel.pool, new SecretBox(KEY), id))?.secret).toBe(SECRET);
  });

  it('the same secret again is 409 CREDENTIAL_EXISTS naming the stored one; another provider may hold it', async () => {
    const again = await admin<Problem>('POST', '', { provider: 'replicate', secret: SECRET, concurrency: 9 });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'CREDENTIAL_EXISTS', existing_id: id });
    expect((await admin('GET', `/${id}`)).body.concurrency).toBe(3);
    const other = await admin('POST', '', { provider: 'openai', secret: SECRET });
    expect(other.status).toBe(201);
    expect(other.body.label).toMatch(/^added \d{4}-\d\d-\d\d$/);
    expect((await admin('DELETE', `/${other.body.id}`)).status).toBe(204);
  });

  it('bad input is 400 naming the field, and nothing is written', async () => {
    const before = await count();
    const cases: Array<[unknown, string]> = [
      [{ provider: 'Replicate!', secret: SECRET }, 'provider'],
      [{ provider: 'replicate', secret: 'short' }, 'secret'],
      [{ provider: 'replicate', secret: 'has a space in it' }, 'secret'],
      [{ provider: 'replicate', secret: 'r8_other_secret_1', concurrency: 0 }, 'concurrency'],
      [{ provider: 'replicate', secret: 'r8_other_secret_1', daily_reset_utc_hour: 24 }, 'daily_reset_utc_hour'],
      [{ provider: 'replicate', secret: 'r8_other_secret_1', colour: 'red' }, 'colour'],
      [{ provider: 'replicate' }, 'secret'],
    ];
    for (const [body, field] of cases) {
      const response = await admin<Problem>('POST', '', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.code).toBe('VALIDATION_FAILED');
      expect(response.body.errors?.map((error) => error.field)).toContain(field);
    }
    const patch = await admin<Problem>('PATCH', `/${id}`, { concurrency: 2, daily_limit: -1 });
    expect(patch.status).toBe(400);
    expect(patch.body.errors?.map((error) => error.field)).toContain('daily_limit');
    expect((await admin<Problem>('PATCH', `/${id}`, {})).status).toBe(400);
    expect((await admin<Problem>('GET', '/not-a-uuid')).status).toBe(400);
    expect(await count()).toBe(before);
    expect((await admin('GET', `/${id}`)).body.concurrency).toBe(3);
  });

  it('lists by provider, reads one, patches only the fields given', async () => {
    const second = await admin('POST', '', { provider: 'huggingface', secret: 'hf_SecondSecret999' });
    expect(second.status).toBe(201);
    const all = await admin<{ data: Credential[] }>('GET', '');
    expect(all.body.data.map((credential) => credential.provider).sort()).toEqual(['huggingface', 'replicate']);
    const hf = await admin<{ data: Credential[] }>('GET', '?provider=huggingface');
    expect(hf.body.data.map((credential) => credential.id)).toEqual([second.body.id]);

    const patched = await admin('PATCH', `/${id}`, { label: 'renamed', daily_limit: null });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      label: 'renamed',
      daily_limit: null,
      concurrency: 3,
      daily_reset_utc_hour: 7,
    });
    expect((await admin('GET', `/${id}`)).body.label).toBe('renamed');
  });

  it('states: exhausted at the daily limit (counting today only), cooling down, disabled; enable clears both', async () => {
    await admin('PATCH', `/${id}`, { daily_limit: 5, daily_reset_utc_hour: 0 });
    await easel.pool.query(
      `UPDATE credentials SET used_today = 5, usage_day = (now() AT TIME ZONE 'UTC')::date WHERE id = $1`,
      [id],
    );
    expect((await admin('GET', `/${id}`)).body).toMatchObject({ state: 'exhausted', used_today: 5 });
    await easel.pool.query(`UPDATE credentials SET usage_day = (now() AT TIME ZONE 'UTC')::date - 1 WHERE id = $1`, [
      id,
    ]);
    expect((await admin('GET', `/${id}`)).body).toMatchObject({ state: 'active', used_today: 0 });

    await easel.pool.query(
      `UPDATE credentials SET cooldown_until = now() + interval '1 hour', last_error_code = 'RATE_LIMITED',
              last_error_at = now() WHERE id = $1`,
      [id],
    );
    const cooling = (await admin('GET', `/${id}`)).body;
    expect(cooling.state).toBe('cooling_down');
    expect(cooling.cooldown_until).not.toBeNull();
    expect(cooling.last_error?.code).toBe('RATE_LIMITED');
    expect(await listedState(id)).toBe('cooling_down');

    const disabled = await admin('POST', `/${id}/disable`, { reason: 'leaked in a screenshot' });
    expect(disabled.body).toMatchObject({ state: 'disabled', disabled_reason: 'leaked in a screenshot' });
    const noBody = await api<Credential>(easel.url, 'POST', `/v1/admin/credentials/${id}/disable`);
    expect(noBody.body.disabled_reason, JSON.stringify(noBody.body)).toBe('disabled by an admin');

    const enabled = await admin('POST', `/${id}/enable`);
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({ state: 'active', disabled_reason: null, cooldown_until: null });
    expect(await listedState(id)).toBe('active');
  });

  it('deletes: 204, then 404 CREDENTIAL_NOT_FOUND everywhere', async () => {
    expect((await admin('DELETE', `/${id}`)).status).toBe(204);
    for (const [method, route, body] of [
      ['GET', `/${id}`],
      ['PATCH', `/${id}`, { label: 'x' }],
      ['POST', `/${id}/disable`, {}],
      ['POST', `/${id}/enable`],
      ['DELETE', `/${id}`],
    ] as const) {
      const response = await admin<Problem>(method, route, body);
      expect(response.status, `${method} ${route}`).toBe(404);
      expect(response.body.code).toBe('CREDENTIAL_NOT_FOUND');
    }
  });

  it('answers only admins: a user key gets 403 ADMIN_REQUIRED, a bad key 401, and nothing is written', async () => {
    const before = await count();
    const userId = await createUser(easel.pool, 'not-an-admin');
    const { key } = await createApiKey(easel.pool, userId, 'test');
    const asUser = { authorization: `Bearer ${key}` };
    const add = { provider: 'replicate', secret: 'r8_FromAUser12345' };
    const refused = await api<Problem>(easel.url, 'POST', '/v1/admin/credentials', add, asUser);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('ADMIN_REQUIRED');
    expect((await api(easel.url, 'GET', '/v1/admin/credentials', undefined, asUser)).status).toBe(403);
    const badKey = await api<Problem>(easel.url, 'POST', '/v1/admin/credentials', add, {
      authorization: `Bearer easel_sk_${'x'.repeat(43)}`,
    });
    expect(badKey.status).toBe(401);
    expect(badKey.body.code).toBe('INVALID_API_KEY');
    expect(badKey.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await count()).toBe(before);
    // Local mode without a key: the local admin.
    expect((await api(easel.url, 'GET', '/v1/admin/credentials')).status).toBe(200);
  });
});

describe('the credentials table', () => {
  it('refuses rows the API could never write: a bad provider id, concurrency 0, a reset hour of 24', async () => {
    const insert = (provider: string, concurrency: number, hour: number) =>
      easel.pool.query(
        `INSERT INTO credentials (id, provider, label, secret_ciphertext, secret_fingerprint, secret_last4,
                                  concurrency, daily_reset_utc_hour)
         VALUES (gen_random_uuid(), $1, 'x', '\\x01', md5(random()::text), 'abcd', $2, $3)`,
        [provider, concurrency, hour],
      );
    await expect(insert('Bad!', 1, 0)).rejects.toThrow(/check constraint/);
    await expect(insert('replicate', 0, 0)).rejects.toThrow(/check constraint/);
    await expect(insert('replicate', 1, 24)).rejects.toThrow(/check constraint/);
  });
});

describe('import from the environment at start', () => {
  it('imports every form once; a second start adds nothing and keeps limits an admin changed', async () => {
    const env = {
      EASEL_SECRET_KEY: KEY.toString('hex'),
      REPLICATE_API_TOKEN: 'r8_FromTheEnvironment1',
      HUGGING_FACE_TOKENS: 'hf_ListedOne111,hf_ListedTwo222',
      HUGGING_FACE_TOKEN_1: 'hf_NumberedOne33',
      HUGGING_FACE_TOKEN: 'hf_ListedOne111',
      OPENAI_API_KEY: 'sk-FromTheEnvironment',
    };
    const first = await startTestEasel(databaseUrl, { roles: { api: true, worker: false }, env });
    let imported: Credential[];
    try {
      imported = (await api<{ data: Credential[] }>(first.url, 'GET', '/v1/admin/credentials')).body.data.filter(
        (credential) => credential.label.startsWith('env '),
      );
      expect(imported.map((credential) => [credential.provider, credential.label]).sort()).toEqual([
        ['huggingface', 'env HUGGING_FACE_TOKENS[1]'],
        ['huggingface', 'env HUGGING_FACE_TOKENS[2]'],
        ['huggingface', 'env HUGGING_FACE_TOKEN_1'],
        ['openai', 'env OPENAI_API_KEY'],
        ['replicate', 'env REPLICATE_API_TOKEN'],
      ]);
      const replicate = imported.find((credential) => credential.provider === 'replicate')!;
      await api(first.url, 'PATCH', `/v1/admin/credentials/${replicate.id}`, { concurrency: 7, daily_limit: 50 });
    } finally {
      await first.stop();
    }
    const second = await startTestEasel(databaseUrl, { roles: { api: true, worker: false }, env });
    try {
      const after = (await api<{ data: Credential[] }>(second.url, 'GET', '/v1/admin/credentials')).body.data.filter(
        (credential) => credential.label.startsWith('env '),
      );
      expect(after.map((credential) => credential.id).sort()).toEqual(
        imported.map((credential) => credential.id).sort(),
      );
      expect(after.find((credential) => credential.provider === 'replicate')).toMatchObject({
        concurrency: 7,
        daily_limit: 50,
      });
    } finally {
      await second.stop();
    }
  });
});
