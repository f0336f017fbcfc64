import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { randomBytes } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialSchema } from '../../src/api/routes/admin-credentials.js';
import type { TaskResource } from '../../src/api/schemas/task.js';
import type { ProvidersSchema } from '../../src/api/schemas/providers.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { createSketchProvider } from '../../src/providers/sketch/index.js';
import type { Provider } from '../../src/providers/types.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { solidPng } from '../helpers/images.js';
import { eventually } from '../helpers/processes.js';

/**
 * Provider health at GET /v1/providers, `waiting_for` on queued tasks, `in_use` on credentials
 * and the seed-001 token view, against a real Easel with a stand-in provider that draws on a
 * credential pool of its own (the hosted adapters are tested in their own files).
 */

const KEY = randomBytes(32).toString('hex');
const ADMIN_SECRET = 'admin-secret-for-token-status-0001';
const POOL_SECRET = 'gated_SecretValue_0001';
const HF_SECRET = 'hf_TokenStatusSecret_0002';

type Providers = Static<typeof ProvidersSchema>;
type Credential = Static<typeof CredentialSchema>;

/** Each run waits until the test opens its gate, so a task can be watched while it runs. */
const gates: Array<() => void> = [];
const seenCredentials: string[] = [];
const gated: Provider = {
  id: 'gated',
  credentialPool: 'gated',
  models: () => [
    {
      id: 'gated-v1',
      kinds: ['txt2img'],
      maxWidth: 512,
      maxHeight: 512,
      maxSteps: 50,
      options: Type.Object(
        { style: Type.Optional(Type.String({ description: 'A style name.' })) },
        { additionalProperties: false },
      ),
    },
  ],
  run: async (input, ctx) => {
    seenCredentials.push(ctx.credential?.label ?? 'none');
    await new Promise<void>((resolve) => gates.push(resolve));
    const data = await solidPng(input.width, input.height, [10, 200, 30]);
    return [{ data, contentType: 'image/png', width: input.width, height: input.height, seed: input.seed }];
  },
};

let databaseUrl: string;
let easel: TestEasel;
const others: TestEasel[] = [];
/** Every answer body of this file, to look for secrets in at the end. */
const answers: string[] = [];

async function call<T = TaskResource>(base: string, method: string, route: string, body?: unknown) {
  const response = await api<T>(base, method, route, body);
  answers.push(JSON.stringify(response.body));
  return response;
}

const providers = async (base = easel.url) => (await call<Providers>(base, 'GET', '/v1/providers')).body.data;
const provider = async (id: string, base = easel.url) => (await providers(base)).find((entry) => entry.id === id)!;
const sql = (text: string, values: unknown[] = []) => easel.pool.query(text, values);

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl, {
    registry: new ProviderRegistry([createSketchProvider(), gated]),
    env: {
      EASEL_SECRET_KEY: KEY,
      ADMIN_SECRET,
      EASEL_PRICES: JSON.stringify({ sketch: { per_task: 0.5 }, 'gated/gated-v1': { per_image: 2 } }),
      // Slow polling: a task that starts at once after a credential change was woken by the hint.
      EASEL_POLL_INTERVAL_MS: '60000',
    },
  });
  // The prices above make these tasks priced: the local user needs credits to submit them.
  const topUp = await api(easel.url, 'POST', `/v1/users/${LOCAL_USER_ID}/credits`, { amount: 1000, reason: 'test' });
  expect(topUp.status).toBe(201);
});

afterAll(async () => {
  for (const open of gates.splice(0)) open();
  for (const other of others) await other.stop();
  await easel?.stop();
});

describe('GET /v1/providers', () => {
  it('shows a provider without credentials as unavailable, with models, options and prices', async () => {
    const sketch = await provider('sketch');
    expect(sketch).toMatchObject({ available: true, unavailable_reason: null, available_again_at: null });
    expect(sketch.credentials).toBeNull();
    expect(sketch.models[0]!.price).toEqual({ per_task: 0.5 });

    const pooled = await provider('gated');
    expect(pooled).toMatchObject({
      available: false,
      unavailable_reason: 'no_credentials',
      available_again_at: null,
      credentials: { pool: 'gated', total: 0, active: 0, cooling_down: 0, exhausted: 0, disabled: 0 },
    });
    expect(pooled.models[0]).toMatchObject({
      id: 'gated-v1',
      kinds: ['txt2img'],
      max_width: 512,
      max_height: 512,
      max_steps: 50,
      price: { per_image: 2 },
      options: { type: 'object', additionalProperties: false, properties: { style: { type: 'string' } } },
    });
  });
});

describe('a task whose provider has no usable credential', () => {
  let taskId: string;
  let credentialId: string;

  it('waits with waiting_for and no invented ETA', async () => {
    const submitted = await call(easel.url, 'POST', '/v1/tasks', {
      prompt: 'waiting',
      provider: 'gated',
      width: 64,
      height: 64,
    });
    expect(submitted.status).toBe(202);
    taskId = submitted.body.id;
    const task = (await call(easel.url, 'GET', `/v1/tasks/${taskId}`)).body;
    expect(task).toMatchObject({
      status: 'queued',
      eta_seconds: null,
      waiting_for: { reason: 'no_credentials', available_again_at: null },
    });
  });

  it('runs as soon as a credential is added, and the credential shows it in use', async () => {
    const added = await call<Credential>(easel.url, 'POST', '/v1/admin/credentials', {
      provider: 'gated',
      secret: POOL_SECRET,
      label: 'first',
      concurrency: 2,
    });
    expect(added.status).toBe(201);
    expect(added.body.in_use).toBe(0);
    credentialId = added.body.id;
    // The worker polls once a minute here: starting within seconds means the hint woke it.
    await waitForStatus(easel.url, taskId, ['running'], 10_000);
    await eventually('the run to start', async () => gates.length === 1, 5_000, 20);
    expect(seenCredentials).toEqual(['first']);

    const listed = (await call<{ data: Credential[] }>(easel.url, 'GET', '/v1/admin/credentials?provider=gated')).body;
    expect(listed.data).toEqual([expect.objectContaining({ id: credentialId, in_use: 1, concurrency: 2 })]);
    expect((await call<Credential>(easel.url, 'GET', `/v1/admin/credentials/${credentialId}`)).body.in_use).toBe(1);
    expect((await call(easel.url, 'GET', `/v1/tasks/${taskId}`)).body.waiting_for).toBeNull();

    gates.shift()!();
    await waitForStatus(easel.url, taskId, ['succeeded']);
    expect((await call<Credential>(easel.url, 'GET', `/v1/admin/credentials/${credentialId}`)).body.in_use).toBe(0);
  });

  it('names each reason, and when the pool comes back by itself', async () => {
    expect(await provider('gated')).toMatchObject({ available: true, unavailable_reason: null });

    await call(easel.url, 'POST', `/v1/admin/credentials/${credentialId}/disable`, { reason: 'test' });
    expect(await provider('gated')).toMatchObject({
      available: false,
      unavailable_reason: 'all_disabled',
      available_again_at: null,
      credentials: { total: 1, disabled: 1 },
    });
    await call(easel.url, 'POST', `/v1/admin/credentials/${credentialId}/enable`);

    // A cooldown that ends by itself: the time is its end, and then the pool is back.
    const { rows } = await sql(
      `UPDATE credentials SET cooldown_until = now() + interval '1.5 seconds' WHERE id = $1 RETURNING cooldown_until`,
      [credentialId],
    );
    const cooling = await provider('gated');
    expect(cooling).toMatchObject({ available: false, unavailable_reason: 'cooling_down' });
    expect(cooling.available_again_at).toBe((rows[0].cooldown_until as Date).toISOString());
    await eventually('the cooldown to end', async () => (await provider('gated')).available, 10_000, 100);

    // A daily limit used up: back at the next reset, which the test brings forward a day.
    await call(easel.url, 'PATCH', `/v1/admin/credentials/${credentialId}`, { daily_limit: 1 });
    await sql(
      `UPDATE credentials SET used_today = 1, usage_day = easel_usage_day(daily_reset_utc_hour) WHERE id = $1`,
      [credentialId],
    );
    const exhausted = await provider('gated');
    const credential = (await call<Credential>(easel.url, 'GET', `/v1/admin/credentials/${credentialId}`)).body;
    expect(exhausted).toMatchObject({
      available: false,
      unavailable_reason: 'daily_limit_reached',
      available_again_at: credential.next_reset_at,
      credentials: { exhausted: 1 },
    });
    await sql(`UPDATE credentials SET usage_day = usage_day - 1 WHERE id = $1`, [credentialId]);
    expect(await provider('gated')).toMatchObject({ available: true, unavailable_reason: null });

    // Cooling down and exhausted together: whichever comes back first names the reason.
    await sql(
      `UPDATE credentials SET used_today = 1, usage_day = easel_usage_day(daily_reset_utc_hour),
              cooldown_until = now() + interval '1 minute' WHERE id = $1`,
      [credentialId],
    );
    expect(await provider('gated')).toMatchObject({
      available: false,
      unavailable_reason: 'daily_limit_reached',
      available_again_at: credential.next_reset_at,
    });
    const queued = await call(easel.url, 'POST', '/v1/tasks', { prompt: 'later', provider: 'gated' });
    expect(queued.body).toMatchObject({
      status: 'queued',
      eta_seconds: null,
      waiting_for: { reason: 'daily_limit_reached', available_again_at: credential.next_reset_at },
    });
    expect((await call(easel.url, 'POST', `/v1/tasks/${queued.body.id}/cancel`)).status).toBe(200);
    await sql(`UPDATE credentials SET used_today = 0, cooldown_until = NULL WHERE id = $1`, [credentialId]);
  });

  it('says secret_key_missing on a process that cannot open the stored secrets', async () => {
    const keyless = await startTestEasel(databaseUrl, {
      roles: { api: true, worker: false },
      registry: new ProviderRegistry([createSketchProvider(), gated]),
    });
    others.push(keyless);
    expect(await provider('gated', keyless.url)).toMatchObject({
      available: false,
      unavailable_reason: 'secret_key_missing',
      credentials: { total: 1, active: 1 },
    });
    // Without ADMIN_SECRET the compatibility route does not exist.
    expect((await call(keyless.url, 'GET', `/api/token-status?secret=${ADMIN_SECRET}`)).status).toBe(404);
  });
});

describe('GET /api/token-status (seed 001)', () => {
  it('lists the Hugging Face tokens in the seed shape for the right secret', async () => {
    const added = await call<Credential>(easel.url, 'POST', '/v1/admin/credentials', {
      provider: 'huggingface',
      secret: HF_SECRET,
      label: 'hf one',
      daily_limit: 100,
    });
    expect(added.status).toBe(201);
    const answer = await call<Record<string, unknown>>(
      easel.url,
      'GET',
      `/api/token-status?secret=${encodeURIComponent(ADMIN_SECRET)}`,
    );
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      totalTokens: 1,
      availableTokens: 1,
      tokens: [
        {
          index: 0,
          id: added.body.id,
          label: 'hf one',
          token: '…0002',
          status: 'active',
          isAvailable: true,
          usageCount: 0,
          dailyLimit: 100,
          inUse: 0,
          lastUsed: null,
          resetTime: added.body.next_reset_at,
          cooldownUntil: null,
          disabledReason: null,
          lastError: null,
        },
      ],
    });
  });

  it('refuses a wrong or missing secret with 401 problem+json', async () => {
    for (const query of ['?secret=wrong', `?secret=${ADMIN_SECRET}x`, '', '?secret=']) {
      const response = await fetch(`${easel.url}/api/token-status${query}`);
      const body = await response.text();
      answers.push(body);
      expect(response.status, query).toBe(401);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(JSON.parse(body).code).toBe('ADMIN_SECRET_INVALID');
    }
  });
});

describe('secrets', () => {
  it('appear in no answer of this file', () => {
    expect(answers.length).toBeGreaterThan(10);
    for (const secret of [POOL_SECRET, HF_SECRET, ADMIN_SECRET, KEY]) {
      for (const answer of answers) expect(answer).not.toContain(secret);
    }
  });
});
