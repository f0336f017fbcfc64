import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { settleBatch } from '../../src/billing/external-charges.js';
import { createLicenseApi } from '../../src/billing/license-api.js';
import type { TaskResource } from '../../src/api/schemas/task.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel, waitForStatus } from '../helpers/easel.js';
import { expectLedgerConsistent } from '../helpers/credits.js';
import { startFakeLicenseApi, type FakeLicenseApi } from '../fakes/license-api.js';
import { runCli, succeeded } from '../helpers/processes.js';

/**
 * The external licence API (LICENSE_API_ENDPOINT) against a fake on loopback: the balance check
 * before a priced task, the charge recorded with its success and sent afterwards, and the
 * licence API being short, down, slow or failing. sketch costs 1 credit per task here.
 */

const TIMEOUT_MS = 1000;
const CREDIT = 1_000_000;

interface Problem {
  code: string;
  source?: string;
  balance?: number;
  needed?: number;
}
interface Charge {
  task_id: string;
  email: string;
  amount: number;
  status: string;
  attempts: number;
  last_error: string | null;
}
interface Unreconciled {
  data: Charge[];
  next_cursor: string | null;
  pending: number;
  failed: number;
}
interface ReconcileOutcome {
  settled: number;
  failed: number;
  retrying: number;
  pending: number;
  failed_total: number;
}

let fake: FakeLicenseApi;
let databaseUrl: string;
let easel: TestEasel;

beforeAll(async () => {
  fake = await startFakeLicenseApi();
  databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl, {
    env: {
      EASEL_PRICES: JSON.stringify({ 'sketch/sketch-v1': { per_task: 1 } }),
      EASEL_PROVIDER_CONCURRENCY: 'sketch=4',
      LICENSE_API_ENDPOINT: fake.url,
      LICENSE_API_TIMEOUT_MS: String(TIMEOUT_MS),
      // Workers' own settling is tested on its own below; here charges move only when a test says.
      EASEL_RESCUE_INTERVAL_MS: '600000',
    },
  });
});
afterAll(async () => {
  await easel?.stop();
  await fake?.close();
});

const licenseApi = () => createLicenseApi({ endpoint: fake.url, timeoutMs: TIMEOUT_MS, failOpen: true });

/** A user with an email, a key, local credits (Easel's own ledger applies too) and a licence balance. */
async function newUser(
  name: string,
  options: { licenseCredits?: number; email?: boolean } = {},
): Promise<{ id: string; email: string; auth: Record<string, string> }> {
  const id = await createUser(easel.pool, `${name}-${crypto.randomUUID().slice(0, 8)}`);
  const email = `${name}-${id.slice(0, 8)}@example.test`;
  if (options.email !== false) await easel.pool.query('UPDATE users SET email = $2 WHERE id = $1', [id, email]);
  const { key } = await createApiKey(easel.pool, id, 'test');
  const topUp = await api(easel.url, 'POST', `/v1/users/${id}/credits`, { amount: 100, reason: 'test' });
  expect(topUp.status).toBe(201);
  if (options.licenseCredits !== undefined) fake.balances.set(email, options.licenseCredits * CREDIT);
  return { id, email, auth: { authorization: `Bearer ${key}` } };
}

const sketch = (extra: Record<string, unknown> = {}) => ({
  prompt: 'a licensed sketch',
  provider: 'sketch',
  width: 64,
  height: 64,
  steps: 2,
  ...extra,
});

const waitFor = (id: string, statuses: string[], auth: Record<string, string>): Promise<TaskResource> =>
  waitForStatus(easel.url, id, statuses, 20_000, auth);

async function succeededTask(auth: Record<string, string>): Promise<string> {
  const submitted = await api(easel.url, 'POST', '/v1/tasks', sketch(), auth);
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
  await waitFor(submitted.body.id, ['succeeded'], auth);
  return submitted.body.id;
}

async function chargeOf(taskId: string) {
  const { rows } = await easel.pool.query<{
    status: string;
    amount: number;
    attempts: number;
    last_error: string | null;
  }>('SELECT status, amount, attempts, last_error FROM external_charges WHERE task_id = $1', [taskId]);
  return rows[0];
}

const reconcileNow = (query = '') => api<ReconcileOutcome>(easel.url, 'POST', `/v1/admin/billing/reconcile${query}`);

async function writtenFor(userId: string) {
  const [tasks, ledger, charges] = await Promise.all([
    easel.pool.query('SELECT 1 FROM tasks WHERE user_id = $1', [userId]),
    easel.pool.query(`SELECT 1 FROM credit_ledger WHERE user_id = $1 AND kind <> 'top_up'`, [userId]),
    easel.pool.query('SELECT 1 FROM external_charges WHERE user_id = $1', [userId]),
  ]);
  return { tasks: tasks.rowCount, ledger: ledger.rowCount, charges: charges.rowCount };
}

describe('the balance check before a task', () => {
  it('refuses with 402 INSUFFICIENT_CREDITS when the licence balance is short, writing nothing', async () => {
    const user = await newUser('short', { licenseCredits: 0.5 });
    const refused = await api<Problem>(easel.url, 'POST', '/v1/tasks', sketch(), user.auth);
    expect(refused.status).toBe(402);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body).toMatchObject({
      code: 'INSUFFICIENT_CREDITS',
      source: 'license_api',
      balance: 0.5,
      needed: 1,
    });
    expect(await writtenFor(user.id)).toEqual({ tasks: 0, ledger: 0, charges: 0 });
  });

  it('refuses a user the licence API does not know (404) like an empty balance', async () => {
    const user = await newUser('unknown');
    const refused = await api<Problem>(easel.url, 'POST', '/v1/tasks', sketch(), user.auth);
    expect(refused.status).toBe(402);
    expect(refused.body.code).toBe('INSUFFICIENT_CREDITS');
    expect(await writtenFor(user.id)).toEqual({ tasks: 0, ledger: 0, charges: 0 });
  });

  it('checks a retry too: a canceled task is not requeued when the licence balance fell short', async () => {
    const user = await newUser('retry', { licenseCredits: 5 });
    const submitted = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      sketch({ provider_options: { delay_ms: 60_000 } }),
      user.auth,
    );
    expect(submitted.status).toBe(202);
    const cancel = await api(easel.url, 'POST', `/v1/tasks/${submitted.body.id}/cancel`, undefined, user.auth);
    expect([200, 202]).toContain(cancel.status);
    await waitFor(submitted.body.id, ['canceled'], user.auth);
    fake.balances.set(user.email, 0);
    const ledgerBefore = await writtenFor(user.id);
    const refused = await api<Problem>(easel.url, 'POST', `/v1/tasks/${submitted.body.id}/retry`, undefined, user.auth);
    expect(refused.status).toBe(402);
    expect(refused.body.source).toBe('license_api');
    expect((await waitFor(submitted.body.id, ['canceled'], user.auth)).status).toBe('canceled');
    expect(await writtenFor(user.id)).toEqual(ledgerBefore);
  });

  it("leaves a user without an email to Easel's own credits: no check, no external charge", async () => {
    const user = await newUser('no-email', { email: false });
    const before = fake.balanceRequests;
    const taskId = await succeededTask(user.auth);
    expect(fake.balanceRequests).toBe(before);
    expect(await chargeOf(taskId)).toBeUndefined();
  });
});

describe('charging after a task', () => {
  it('records the charge with the success and settles it once with the task id as reference', async () => {
    const user = await newUser('paying', { licenseCredits: 5 });
    const taskId = await succeededTask(user.auth);
    expect(await chargeOf(taskId)).toMatchObject({ status: 'pending', amount: CREDIT, attempts: 0 });
    const outcome = await reconcileNow();
    expect(outcome.status).toBe(200);
    expect(outcome.body.settled).toBeGreaterThanOrEqual(1);
    expect(await chargeOf(taskId)).toMatchObject({ status: 'settled', attempts: 1, last_error: null });
    expect(fake.deductions.get(taskId)).toEqual({ email: user.email, micro: CREDIT });
    expect(fake.balances.get(user.email)).toBe(4 * CREDIT);
    // Reconciling again sends nothing more.
    await reconcileNow();
    expect(fake.deductRequests.filter((reference) => reference === taskId)).toHaveLength(1);
    await expectLedgerConsistent(easel.pool);
  });

  it('fails open when the licence API is down: the task runs, the charge stays pending, then settles', async () => {
    const user = await newUser('outage', { licenseCredits: 5 });
    fake.down = true;
    try {
      const taskId = await succeededTask(user.auth);
      const attempt = await reconcileNow();
      expect(attempt.body).toMatchObject({ settled: 0, retrying: 1 });
      expect(await chargeOf(taskId)).toMatchObject({ status: 'pending', attempts: 1 });
      expect((await chargeOf(taskId))!.last_error).toMatch(/unreachable/);
      const listed = await api<Unreconciled>(easel.url, 'GET', '/v1/admin/billing/unreconciled?limit=100');
      expect(listed.status).toBe(200);
      expect(listed.body.data.find((charge) => charge.task_id === taskId)).toMatchObject({
        email: user.email,
        amount: 1,
        status: 'pending',
        attempts: 1,
      });
      fake.down = false;
      // Workers would wait out their backoff; reconcile sends it now.
      const settled = await reconcileNow();
      expect(settled.body.settled).toBeGreaterThanOrEqual(1);
      expect(await chargeOf(taskId)).toMatchObject({ status: 'settled', attempts: 2 });
      expect(fake.deductions.get(taskId)?.micro).toBe(CREDIT);
      const after = await api<Unreconciled>(easel.url, 'GET', '/v1/admin/billing/unreconciled?limit=100');
      expect(after.body.data.some((charge) => charge.task_id === taskId)).toBe(false);
    } finally {
      fake.down = false;
    }
  });

  it('fails open on a 5xx from the balance check too', async () => {
    const user = await newUser('five-hundred', { licenseCredits: 5 });
    fake.status = 503;
    try {
      const submitted = await api(easel.url, 'POST', '/v1/tasks', sketch(), user.auth);
      expect(submitted.status).toBe(202);
      await waitFor(submitted.body.id, ['succeeded'], user.auth);
    } finally {
      fake.status = undefined;
    }
  });

  it('marks a charge the licence API refuses (4xx) failed, and sends it again only when asked', async () => {
    const user = await newUser('refused', { licenseCredits: 5 });
    const taskId = await succeededTask(user.auth);
    fake.balances.delete(user.email);
    await reconcileNow();
    expect(await chargeOf(taskId)).toMatchObject({ status: 'failed' });
    expect((await reconcileNow()).body.failed_total).toBeGreaterThanOrEqual(1);
    expect(await chargeOf(taskId)).toMatchObject({ status: 'failed', attempts: 1 });
    fake.balances.set(user.email, 5 * CREDIT);
    await reconcileNow('?retry_failed=true');
    expect(await chargeOf(taskId)).toMatchObject({ status: 'settled', attempts: 2 });
  });

  it('does not wait for a slow licence API to record a success', async () => {
    const user = await newUser('slow', { licenseCredits: 5 });
    // Far longer than the whole wait below: the success cannot be waiting on it.
    fake.delayMs = 60_000;
    try {
      const taskId = await succeededTask(user.auth);
      expect(await chargeOf(taskId)).toMatchObject({ status: 'pending', attempts: 0 });
    } finally {
      fake.delayMs = 0;
    }
  });
});

describe('sending each charge once', () => {
  it('sends a charge once when settlers run at the same time against a slow licence API', async () => {
    const user = await newUser('concurrent', { licenseCredits: 50 });
    const tasks = await Promise.all(Array.from({ length: 6 }, () => succeededTask(user.auth)));
    fake.delayMs = 300;
    try {
      const api1 = licenseApi();
      const runs = await Promise.all([
        settleBatch(easel.pool, api1, { limit: 20, timeoutMs: TIMEOUT_MS }),
        settleBatch(easel.pool, api1, { limit: 20, timeoutMs: TIMEOUT_MS }),
        reconcileNow().then((answer) => answer.body),
      ]);
      expect(runs.reduce((sum, run) => sum + run.settled, 0)).toBeGreaterThanOrEqual(tasks.length);
    } finally {
      fake.delayMs = 0;
    }
    for (const taskId of tasks) {
      expect(fake.deductRequests.filter((reference) => reference === taskId)).toHaveLength(1);
      expect(await chargeOf(taskId)).toMatchObject({ status: 'settled', attempts: 1 });
    }
    expect(fake.balances.get(user.email)).toBe(44 * CREDIT);
  });

  it('deducts once when an answer comes too late and the charge is sent again', async () => {
    const user = await newUser('late', { licenseCredits: 5 });
    const taskId = await succeededTask(user.auth);
    fake.delayMs = TIMEOUT_MS * 2;
    try {
      const first = await settleBatch(easel.pool, licenseApi(), { limit: 20, timeoutMs: TIMEOUT_MS });
      expect(first.retrying).toBeGreaterThanOrEqual(1);
      expect(await chargeOf(taskId)).toMatchObject({ status: 'pending' });
      expect((await chargeOf(taskId))!.last_error).toMatch(/no answer within/);
      // The licence API applied it all the same, after Easel stopped waiting.
      await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 1.5));
      expect(fake.deductions.has(taskId)).toBe(true);
    } finally {
      fake.delayMs = 0;
    }
    await reconcileNow();
    expect(await chargeOf(taskId)).toMatchObject({ status: 'settled' });
    expect(fake.deductRequests.filter((reference) => reference === taskId)).toHaveLength(2);
    expect(fake.balances.get(user.email)).toBe(4 * CREDIT);
  });
});

describe('easel billing', () => {
  it('lists an unreconciled charge and reconciles it from the CLI', async () => {
    const user = await newUser('cli', { licenseCredits: 5 });
    const env = { EASEL_URL: easel.url, EASEL_API_KEY: '' };
    fake.down = true;
    let taskId: string;
    try {
      taskId = await succeededTask(user.auth);
      const left = await runCli(['billing', 'reconcile'], { env });
      expect(left.code, left.stderr).toBe(1);
      expect(left.stdout).toMatch(/settled 0/);
    } finally {
      fake.down = false;
    }
    const listed = succeeded(await runCli(['billing', 'unreconciled'], { env }));
    expect(listed.stdout).toContain(taskId);
    expect(listed.stdout).toContain(user.email);
    const done = await runCli(['billing', 'reconcile', '--json'], { env });
    expect(JSON.parse(done.stdout)).toMatchObject({ pending: 0 });
    expect(await chargeOf(taskId)).toMatchObject({ status: 'settled' });
    expect(fake.deductions.get(taskId)?.micro).toBe(CREDIT);
  });
});

describe('workers and configuration', () => {
  it("settles pending charges in workers' maintenance pass", async () => {
    const user = await newUser('worker-pass', { licenseCredits: 5 });
    const taskId = await succeededTask(user.auth);
    expect(await chargeOf(taskId)).toMatchObject({ status: 'pending' });
    const worker = await startTestEasel(databaseUrl, {
      roles: { api: false, worker: true },
      env: { LICENSE_API_ENDPOINT: fake.url, EASEL_RESCUE_INTERVAL_MS: '200' },
    });
    try {
      const deadline = Date.now() + 15_000;
      while ((await chargeOf(taskId))?.status !== 'settled' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await chargeOf(taskId)).toMatchObject({ status: 'settled' });
      expect(fake.deductions.get(taskId)?.micro).toBe(CREDIT);
    } finally {
      await worker.stop();
    }
  });

  it('fails closed with 503 BILLING_UNAVAILABLE and Retry-After when LICENSE_API_FAIL_OPEN=false', async () => {
    const closed = await startTestEasel(databaseUrl, {
      roles: { api: true, worker: false },
      env: {
        EASEL_PRICES: JSON.stringify({ 'sketch/sketch-v1': { per_task: 1 } }),
        LICENSE_API_ENDPOINT: fake.url,
        LICENSE_API_TIMEOUT_MS: String(TIMEOUT_MS),
        LICENSE_API_FAIL_OPEN: 'false',
      },
    });
    const user = await newUser('closed', { licenseCredits: 5 });
    fake.down = true;
    try {
      const refused = await api<Problem>(closed.url, 'POST', '/v1/tasks', sketch(), user.auth);
      expect(refused.status).toBe(503);
      expect(refused.body.code).toBe('BILLING_UNAVAILABLE');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await writtenFor(user.id)).toEqual({ tasks: 0, ledger: 0, charges: 0 });
    } finally {
      fake.down = false;
      await closed.stop();
    }
  });

  it('answers reconcile with 409 BILLING_NOT_CONFIGURED without LICENSE_API_ENDPOINT, and only to admins', async () => {
    const plain = await startTestEasel(databaseUrl, { roles: { api: true, worker: false } });
    try {
      const answer = await api<Problem>(plain.url, 'POST', '/v1/admin/billing/reconcile');
      expect(answer.status).toBe(409);
      expect(answer.body.code).toBe('BILLING_NOT_CONFIGURED');
      const user = await newUser('not-admin');
      const forbidden = await api<Problem>(plain.url, 'GET', '/v1/admin/billing/unreconciled', undefined, user.auth);
      expect(forbidden.status).toBe(403);
      const badLimit = await api<Problem>(plain.url, 'GET', '/v1/admin/billing/unreconciled?limit=0');
      expect(badLimit.status).toBe(400);
    } finally {
      await plain.stop();
    }
  });
});
