import type { Static } from '@sinclair/typebox';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialSchema } from '../../src/api/routes/admin-credentials.js';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { createCredentialTokenStore } from '../../src/credentials/token-store.js';
import { jwtExpiry } from '../../src/providers/novelai/jwt.js';
import { FakeNovelAI } from '../fakes/novelai.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';

type Credential = Static<typeof CredentialSchema>;

const KEY = randomBytes(32);
const ALICE = { email: 'alice@example.com', password: 'alice password with spaces' };
const BOB = { email: 'bob@example.com', password: 'bob-password-2' };
const DAY_MS = 24 * 60 * 60 * 1000;

let fake: FakeNovelAI;
let easel: TestEasel;

const novelaiTask = (prompt = 'a lighthouse at dusk', extra: Record<string, unknown> = {}) => ({
  provider: 'novelai',
  model: 'nai-diffusion-4-5-full',
  prompt,
  width: 832,
  height: 1216,
  steps: 23,
  guidance: 5,
  ...extra,
});

async function generateOnce(prompt?: string): Promise<void> {
  const submitted = await api(easel.url, 'POST', '/v1/tasks', novelaiTask(prompt));
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
  const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
  expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
}

const credentials = async () =>
  (await api<{ data: Credential[] }>(easel.url, 'GET', '/v1/admin/credentials?provider=novelai')).body.data;
const byLabel = async (pattern: RegExp) => (await credentials()).find((row) => pattern.test(row.label))!;

beforeAll(async () => {
  fake = await new FakeNovelAI().start();
  await fake.addAccount(ALICE.email, ALICE.password);
  await fake.addAccount(BOB.email, BOB.password);
  fake.addPersistentToken('pst-carol-token-0001', 'carol@example.com');
  easel = await startTestEasel(await createTestDatabase(), {
    env: {
      EASEL_SECRET_KEY: KEY.toString('hex'),
      NOVELAI_BASE_URL: fake.url,
      NOVELAI_API_BASE_URL: fake.url,
      NOVELAI_EMAIL: ALICE.email,
      NOVELAI_PASSWORD: ALICE.password,
      NOVELAI_CONCURRENT_WAIT_MS: '300',
    },
  });
});
afterAll(async () => {
  await easel?.stop();
  await fake?.close();
});

describe('novelai through the API', () => {
  it('imports the env account with concurrency 1 and no token yet', async () => {
    const [alice] = await credentials();
    expect(alice).toMatchObject({
      label: `env NOVELAI_EMAIL ${ALICE.email}`,
      concurrency: 1,
      secret_hint: '…om"}',
      token: { state: 'none', expires_at: null, days_left: null },
    });
  });

  it('generates, signs in once and shows the cached token, sealed at rest', async () => {
    await generateOnce();
    await generateOnce();
    expect(fake.logins.get(ALICE.email)).toBe(1);
    const alice = await byLabel(/alice/);
    expect(alice.token).toMatchObject({ state: 'valid', days_left: 29 });
    const { rows } = await easel.pool.query<{ token_ciphertext: Buffer }>(
      'SELECT token_ciphertext FROM credential_tokens',
    );
    expect(rows).toHaveLength(1);
    const token = fake.generations[0]!.bearer;
    expect(rows[0]!.token_ciphertext.includes(Buffer.from(token))).toBe(false);
    expect(new SecretBox(KEY).open(rows[0]!.token_ciphertext)).toBe(token);
  });

  it('renews the token before use when under 10 days remain', async () => {
    await easel.pool.query(`UPDATE credential_tokens SET expires_at = now() + interval '5 days 1 hour'`);
    expect((await byLabel(/alice/)).token).toMatchObject({ state: 'expiring', days_left: 5 });
    const before = fake.logins.get(ALICE.email)!;
    await generateOnce();
    expect(fake.logins.get(ALICE.email)).toBe(before + 1);
    expect((await byLabel(/alice/)).token).toMatchObject({ state: 'valid', days_left: 29 });
  });

  it('survives a damaged cache entry: shown as damaged, signed in again, task succeeds', async () => {
    await easel.pool.query(`UPDATE credential_tokens SET token_ciphertext = '\\x01deadbeef'::bytea`);
    expect((await byLabel(/alice/)).token!.state).toBe('damaged');
    const before = fake.logins.get(ALICE.email)!;
    await generateOnce();
    expect(fake.logins.get(ALICE.email)).toBe(before + 1);
    expect((await byLabel(/alice/)).token!.state).toBe('valid');
  });

  it('shows an expired entry as expired', async () => {
    const store = createCredentialTokenStore(easel.pool, new SecretBox(KEY));
    const alice = await byLabel(/alice/);
    await store.write(alice.id, 'x.y.z', new Date(Date.now() - DAY_MS));
    expect((await byLabel(/alice/)).token).toMatchObject({ state: 'expired', days_left: 0 });
    // A key other than the one it was sealed with cannot open it: damaged to that reader.
    expect(await createCredentialTokenStore(easel.pool, new SecretBox(randomBytes(32))).read(alice.id)).toHaveProperty(
      'damaged',
    );
  });

  it('refuses a broken account secret at add, storing nothing', async () => {
    const before = (await credentials()).length;
    const refused = await api<{ code: string; errors: Array<{ field: string }>; detail: string }>(
      easel.url,
      'POST',
      '/v1/admin/credentials',
      { provider: 'novelai', secret: '{"email":"nobody@example.com"}' },
    );
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'secret' }] });
    expect(refused.body.detail).toMatch(/password/);
    expect((await credentials()).length).toBe(before);
  });

  it('keeps two accounts apart: each task goes out under the account it was claimed with', async () => {
    const added = await api<Credential>(easel.url, 'POST', '/v1/admin/credentials', {
      provider: 'novelai',
      label: 'bob',
      secret: JSON.stringify({ email: BOB.email, password: BOB.password }),
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body.token).toMatchObject({ state: 'none' });
    fake.generations.length = 0;
    const ids = await Promise.all(
      [1, 2, 3, 4].map(async (n) => (await api(easel.url, 'POST', '/v1/tasks', novelaiTask(`scene ${n}`))).body.id),
    );
    for (const id of ids)
      expect((await waitForStatus(easel.url, id, ['succeeded', 'failed'])).status).toBe('succeeded');
    const { rows } = await easel.pool.query<{ credential_id: string; token_ciphertext: Buffer }>(
      'SELECT credential_id, token_ciphertext FROM credential_tokens',
    );
    expect(rows).toHaveLength(2);
    const box = new SecretBox(KEY);
    const bob = added.body.id;
    for (const row of rows) {
      const claims = JSON.parse(Buffer.from(box.open(row.token_ciphertext).split('.')[1]!, 'base64url').toString());
      expect(claims.id).toBe(row.credential_id === bob ? BOB.email : ALICE.email);
    }
    // Both accounts served, and the fake saw each token only with its own account.
    expect(new Set(fake.generations.map((generation) => generation.account))).toEqual(
      new Set([ALICE.email, BOB.email]),
    );
    const { rows: served } = await easel.pool.query<{ credential_id: string; prompt: string }>(
      `SELECT credential_id, params->>'prompt' AS prompt FROM tasks WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    for (const task of served) {
      const generation = fake.generations.find((seen) => (seen.body.input as string).startsWith(`${task.prompt},`))!;
      expect(generation.account).toBe(task.credential_id === bob ? BOB.email : ALICE.email);
    }
    for (const row of await credentials()) expect(row.token?.state).toBe('valid');
    expect(jwtExpiry(fake.generations[0]!.bearer)).toBeDefined();
  });

  it('waits out the concurrent-generation lock instead of failing', async () => {
    fake.lock(ALICE.email).lock(BOB.email);
    const submitted = await api(easel.url, 'POST', '/v1/tasks', novelaiTask('patient'));
    await new Promise((resolve) => setTimeout(resolve, 700));
    fake.lock(ALICE.email, false).lock(BOB.email, false);
    const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(fake.lockRefusals).toBeGreaterThan(0);
    expect(done.attempt).toBe(1);
  });

  it('refuses bad provider_options at the edge, queueing nothing', async () => {
    const before = Number((await easel.pool.query('SELECT count(*) AS n FROM tasks')).rows[0].n);
    for (const provider_options of [
      { characters: [{ prompt: 'girl', position: 'F9' }] },
      { sampler: 'k_unknown' },
      { uc_preset: 7 },
    ]) {
      const refused = await api(easel.url, 'POST', '/v1/tasks', novelaiTask('x', { provider_options }));
      expect(refused.status, JSON.stringify(provider_options)).toBe(400);
    }
    const v3 = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      novelaiTask('x', { model: 'nai-diffusion-3', provider_options: { characters: [{ prompt: 'girl' }] } }),
    );
    expect(v3.status).toBe(400);
    expect(Number((await easel.pool.query('SELECT count(*) AS n FROM tasks')).rows[0].n)).toBe(before);
  });
});
