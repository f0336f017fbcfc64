import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { PermanentError, RetryableError } from '../../src/providers/errors.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { createSketchProvider } from '../../src/providers/sketch/index.js';
import type { GeneratedImage, Provider, RunContext, TaskInput } from '../../src/providers/types.js';
import type { TaskResource } from '../../src/api/schemas/task.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel, waitForStatus } from '../helpers/easel.js';
import { expectLedgerConsistent, ledgerOf } from '../helpers/credits.js';
import { solidPng } from '../helpers/images.js';

/** What the fake provider does for a prompt; each test scripts its own. */
type Script = (input: TaskInput, ctx: RunContext) => Promise<GeneratedImage[]>;
const scripts = new Map<string, Script>();
const fake: Provider = {
  id: 'fake',
  models: () =>
    ['fake-v1', 'task-v1', 'free-v1'].map((id) => ({
      id,
      kinds: ['txt2img'],
      maxWidth: 512,
      maxHeight: 512,
      maxSteps: 50,
    })),
  run: (input, ctx) => scripts.get(input.prompt)!(input, ctx),
};
// A real PNG: the worker decodes every result to finish it (src/images/finish-image.ts).
const PNG_8X8 = await solidPng(8, 8, [10, 20, 30]);
const image = (): GeneratedImage => ({
  data: PNG_8X8,
  contentType: 'image/png',
  width: 8,
  height: 8,
  seed: 1,
});

/** Succeeds after reporting the provider's own seconds. */
const succeedAfter =
  (seconds: number): Script =>
  async (_input, ctx) => {
    ctx.recordPredictTime(seconds);
    return [image()];
  };
/** Runs until the worker aborts it (a cancel). */
const runUntilAborted: Script = (_input, ctx) =>
  new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));

interface Problem {
  code: string;
  balance?: number;
  held?: number;
  available?: number;
  needed?: number;
  min_balance?: number;
}
interface Balance {
  balance: number;
  held: number;
  available: number;
}
interface LedgerEntry {
  id: string;
  kind: string;
  amount: number;
  held: number;
  task_id: string | null;
  actor_id: string | null;
  reason: string;
}

let easel: TestEasel;

beforeAll(async () => {
  // A route whose per-task first target is down: its tasks end on the per-second second target.
  const routesFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'easel-credit-routes-')), 'routes.yaml');
  await writeFile(
    routesFile,
    JSON.stringify({
      routes: {
        paid: {
          targets: [
            { provider: 'fake', model: 'task-v1' },
            { provider: 'fake', model: 'fake-v1' },
          ],
        },
      },
    }),
  );
  easel = await startTestEasel(await createTestDatabase(), {
    registry: new ProviderRegistry([fake, createSketchProvider()]),
    env: {
      // sketch is priced per task here (it is free unless priced); fake/free-v1 stays free.
      EASEL_PRICES: JSON.stringify({
        'sketch/sketch-v1': { per_task: 1 },
        'fake/fake-v1': { per_second: 0.01 },
        'fake/task-v1': { per_task: 0.2 },
      }),
      EASEL_PROVIDER_CONCURRENCY: 'sketch=4,fake=4',
      EASEL_ROUTES_FILE: routesFile,
    },
  });
});
afterAll(async () => {
  await easel?.stop();
});

/** A user with a key, topped up by the local admin (a keyless request in local mode). */
async function newUser(name: string, credits?: number): Promise<{ id: string; auth: Record<string, string> }> {
  const id = await createUser(easel.pool, `${name}-${crypto.randomUUID().slice(0, 8)}`);
  const { key } = await createApiKey(easel.pool, id, 'test');
  if (credits !== undefined) {
    const topUp = await api(easel.url, 'POST', `/v1/users/${id}/credits`, { amount: credits, reason: 'test' });
    expect(topUp.status).toBe(201);
  }
  return { id, auth: { authorization: `Bearer ${key}` } };
}

/** Poll the task as its owner until it reaches one of `statuses`. */
const waitFor = (id: string, statuses: string[], auth: Record<string, string>): Promise<TaskResource> =>
  waitForStatus(easel.url, id, statuses, 20_000, auth);

const balanceOf = async (auth: Record<string, string>) =>
  (await api<Balance>(easel.url, 'GET', '/v1/me/balance', undefined, auth)).body;

const sketch = (extra: Record<string, unknown> = {}) => ({
  prompt: 'a priced sketch',
  provider: 'sketch',
  width: 64,
  height: 64,
  steps: 2,
  ...extra,
});

describe('submitting priced tasks', () => {
  it('accepts exactly as many of 50 concurrent submits as the balance covers; the rest are 402 and write nothing', async () => {
    const user = await newUser('burst', 10);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => api<Problem>(easel.url, 'POST', '/v1/tasks', sketch(), user.auth)),
    );
    const accepted = answers.filter((answer) => answer.status === 202);
    const refused = answers.filter((answer) => answer.status === 402);
    expect(accepted).toHaveLength(10);
    expect(refused).toHaveLength(40);
    for (const answer of refused) {
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(answer.body).toMatchObject({ code: 'INSUFFICIENT_CREDITS', needed: 1 });
      expect(answer.body.balance! - answer.body.held!).toBeLessThan(1);
    }
    const { rows: tasks } = await easel.pool.query('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [
      user.id,
    ]);
    expect(tasks[0].n).toBe(10);
    const holds = (await ledgerOf(easel.pool, user.id)).filter((entry) => entry.kind === 'hold');
    expect(holds).toHaveLength(10);
    for (const answer of accepted) await waitFor((answer.body as unknown as TaskResource).id, ['succeeded'], user.auth);
    expect(await balanceOf(user.auth)).toEqual({ balance: 0, held: 0, available: 0 });
    const kinds = (await ledgerOf(easel.pool, user.id)).map((entry) => entry.kind);
    expect(kinds.filter((kind) => kind === 'capture')).toHaveLength(10);
    expect(kinds.filter((kind) => kind === 'release')).toHaveLength(0);
    await expectLedgerConsistent(easel.pool);
  }, 60_000);

  it('refuses a user with no credits at all, and one under EASEL_MIN_BALANCE, saying by how much', async () => {
    const broke = await newUser('broke');
    const refused = await api<Problem>(easel.url, 'POST', '/v1/tasks', sketch(), broke.auth);
    expect(refused.status).toBe(402);
    expect(refused.body).toMatchObject({
      code: 'INSUFFICIENT_CREDITS',
      balance: 0,
      held: 0,
      needed: 1,
      min_balance: 0,
    });
    expect(await ledgerOf(easel.pool, broke.id)).toEqual([]);

    const strict = await startTestEasel(easel.config.databaseUrl!, {
      registry: new ProviderRegistry([fake, createSketchProvider()]),
      roles: { api: true, worker: false },
      env: { EASEL_PRICES: JSON.stringify({ 'sketch/sketch-v1': { per_task: 1 } }), EASEL_MIN_BALANCE: '5' },
    });
    try {
      const user = await newUser('min-balance', 4.5);
      const underMinimum = await api<Problem>(strict.url, 'POST', '/v1/tasks', sketch(), user.auth);
      expect(underMinimum.status).toBe(402);
      expect(underMinimum.body).toMatchObject({ available: 4.5, needed: 1, min_balance: 5 });
      expect((await ledgerOf(easel.pool, user.id)).map((entry) => entry.kind)).toEqual(['top_up']);
    } finally {
      await strict.stop();
    }
    await expectLedgerConsistent(easel.pool);
  });

  it('holds once for concurrent Idempotency-Key replays, and shows the open hold on the queued task', async () => {
    const user = await newUser('replay', 3);
    const headers = { ...user.auth, 'idempotency-key': 'credits-replay-1' };
    // A long delay keeps it unfinished while we look.
    const body = sketch({ provider_options: { delay_ms: 60_000 } });
    // Ten at once: the losers of the insert race roll their hold back and answer the winner.
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => api(easel.url, 'POST', '/v1/tasks', body, headers)),
    );
    const first = answers.find((answer) => answer.headers.get('idempotent-replayed') === null)!;
    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(202));
    expect(answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true')).toHaveLength(9);
    expect(new Set(answers.map((answer) => answer.body.id))).toEqual(new Set([first.body.id]));
    expect((await ledgerOf(easel.pool, user.id)).map((entry) => entry.kind)).toEqual(['top_up', 'hold']);
    const shown = await api(easel.url, 'GET', `/v1/tasks/${first.body.id}`, undefined, user.auth);
    expect(shown.body).toMatchObject({ hold: 1, cost: null });
    expect(await balanceOf(user.auth)).toEqual({ balance: 3, held: 1, available: 2 });
    await api(easel.url, 'POST', `/v1/tasks/${first.body.id}/cancel`, undefined, user.auth);
    await waitFor(first.body.id, ['canceled'], user.auth);
    await expectLedgerConsistent(easel.pool);
  });

  it('needs no balance and writes no ledger rows for an unpriced task; its cost is null', async () => {
    const user = await newUser('free');
    scripts.set('free', succeedAfter(3));
    const answer = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'free', provider: 'fake', model: 'free-v1' },
      user.auth,
    );
    expect(answer.status).toBe(202);
    const done = await waitFor(answer.body.id, ['succeeded'], user.auth);
    expect(done).toMatchObject({ cost: null, hold: null, predict_time: 3 });
    expect(await ledgerOf(easel.pool, user.id)).toEqual([]);
    await expectLedgerConsistent(easel.pool);
  });
});

describe('settling a hold', () => {
  it('captures per_second from the provider’s own predict_time and releases the rest of the hold', async () => {
    const user = await newUser('per-second', 1);
    scripts.set('timed', succeedAfter(12.345));
    const answer = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'timed', provider: 'fake', model: 'fake-v1' },
      user.auth,
    );
    expect(answer.status).toBe(202);
    const done = await waitFor(answer.body.id, ['succeeded'], user.auth);
    // 0.01 credits per second × 12.345 s = 0.12345 credits, exactly.
    expect(done).toMatchObject({ predict_time: 12.345, cost: 0.12345, hold: null });
    const entries = await ledgerOf(easel.pool, user.id);
    // No history for fake/fake-v1 yet: the hold is 30 s × 0.01 = 0.3 credits.
    expect(entries.map(({ kind, amount, held }) => ({ kind, amount, held }))).toEqual([
      { kind: 'top_up', amount: 1_000_000, held: 0 },
      { kind: 'hold', amount: 0, held: 300_000 },
      { kind: 'capture', amount: -123_450, held: -123_450 },
      { kind: 'release', amount: 0, held: -176_550 },
    ]);
    expect(await balanceOf(user.auth)).toEqual({ balance: 0.87655, held: 0, available: 0.87655 });
    await expectLedgerConsistent(easel.pool);
  });

  it('charges the whole provider time when it ran past the hold, even below zero', async () => {
    const user = await newUser('overrun', 0.5);
    scripts.set('overrun', succeedAfter(80));
    const answer = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'overrun', provider: 'fake', model: 'fake-v1' },
      user.auth,
    );
    const done = await waitFor(answer.body.id, ['succeeded'], user.auth);
    expect(done.cost).toBe(0.8);
    expect(await balanceOf(user.auth)).toMatchObject({ balance: -0.3, held: 0 });
    // Below zero: the next priced task is refused.
    expect((await api(easel.url, 'POST', '/v1/tasks', sketch(), user.auth)).status).toBe(402);
    await expectLedgerConsistent(easel.pool);
  });

  it('releases the hold when the task fails, and when it is canceled queued or running', async () => {
    const user = await newUser('release', 5);
    scripts.set('fails', async () => {
      throw new PermanentError('NOPE', 'the provider refused this prompt');
    });
    const failing = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'fails', provider: 'fake', model: 'fake-v1', max_attempts: 1 },
      user.auth,
    );
    expect(await waitFor(failing.body.id, ['failed'], user.auth)).toMatchObject({ cost: 0, hold: null });

    scripts.set('runs', runUntilAborted);
    const running = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'runs', provider: 'fake', model: 'fake-v1' },
      user.auth,
    );
    await waitFor(running.body.id, ['running'], user.auth);
    await api(easel.url, 'POST', `/v1/tasks/${running.body.id}/cancel`, undefined, user.auth);
    expect(await waitFor(running.body.id, ['canceled'], user.auth)).toMatchObject({ cost: 0, hold: null });

    const queued = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      sketch({ provider_options: { delay_ms: 60_000 } }),
      user.auth,
    );
    const canceled = await api(easel.url, 'POST', `/v1/tasks/${queued.body.id}/cancel`, undefined, user.auth);
    expect([200, 202]).toContain(canceled.status);
    await waitFor(queued.body.id, ['canceled'], user.auth);

    expect(await balanceOf(user.auth)).toEqual({ balance: 5, held: 0, available: 5 });
    const kinds = (await ledgerOf(easel.pool, user.id)).map((entry) => entry.kind);
    expect(kinds.filter((kind) => kind === 'hold')).toHaveLength(3);
    expect(kinds.filter((kind) => kind === 'release')).toHaveLength(3);
    expect(kinds).not.toContain('capture');
    await expectLedgerConsistent(easel.pool);
  });

  it('a retry of a dead letter holds again (402 when it cannot) and charges only if it succeeds', async () => {
    const user = await newUser('retry', 0.3);
    let calls = 0;
    scripts.set('flaky', async (input, ctx) => {
      calls += 1;
      if (calls < 3) throw new PermanentError('NOPE', `failure ${calls}`);
      return succeedAfter(5)(input, ctx);
    });
    const submitted = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'flaky', provider: 'fake', model: 'task-v1', max_attempts: 1 },
      user.auth,
    );
    expect(submitted.status).toBe(202);
    await waitFor(submitted.body.id, ['failed'], user.auth);

    // The balance now covers nothing: the retry is refused and changes nothing.
    await api(easel.url, 'POST', `/v1/users/${user.id}/credits`, {
      amount: -0.25,
      reason: 'spent',
      kind: 'adjustment',
    });
    const refused = await api<Problem>(easel.url, 'POST', `/v1/tasks/${submitted.body.id}/retry`, undefined, user.auth);
    expect(refused.status).toBe(402);
    expect(refused.body).toMatchObject({ code: 'INSUFFICIENT_CREDITS', balance: 0.05, held: 0 });
    expect((await api(easel.url, 'GET', `/v1/tasks/${submitted.body.id}`, undefined, user.auth)).body.status).toBe(
      'failed',
    );

    await api(easel.url, 'POST', `/v1/users/${user.id}/credits`, { amount: 1, reason: 'more' });
    const second = await api(easel.url, 'POST', `/v1/tasks/${submitted.body.id}/retry`, undefined, user.auth);
    expect(second.status).toBe(202);
    expect(await waitFor(submitted.body.id, ['failed'], user.auth)).toMatchObject({ cost: 0 });
    const third = await api(easel.url, 'POST', `/v1/tasks/${submitted.body.id}/retry`, undefined, user.auth);
    expect(third.status).toBe(202);
    const done = await waitFor(submitted.body.id, ['succeeded'], user.auth);
    expect(done.cost).toBe(0.2);
    const { rows: chains } = await easel.pool.query(
      'SELECT chain, status, captured FROM credit_holds WHERE task_id = $1 ORDER BY chain',
      [submitted.body.id],
    );
    expect(chains).toEqual([
      { chain: 1, status: 'released', captured: null },
      { chain: 2, status: 'released', captured: null },
      { chain: 3, status: 'captured', captured: 200_000 },
    ]);
    expect(await balanceOf(user.auth)).toMatchObject({ balance: 0.85, held: 0 });
    // A succeeded task is not retryable, so it cannot be charged twice that way either.
    expect((await api(easel.url, 'POST', `/v1/tasks/${submitted.body.id}/retry`, undefined, user.auth)).status).toBe(
      409,
    );
    await expectLedgerConsistent(easel.pool);
  });
});

describe('retries and submits of one user at once', () => {
  it('all succeed without a deadlock, and the ledger adds up', async () => {
    const user = await newUser('mixed', 50);
    scripts.set('always fails', async () => {
      throw new PermanentError('NOPE', 'no');
    });
    scripts.set('always works', succeedAfter(1));
    const failing = { prompt: 'always fails', provider: 'fake', model: 'task-v1', max_attempts: 1 };
    const dead = await Promise.all(
      Array.from({ length: 5 }, () => api(easel.url, 'POST', '/v1/tasks', failing, user.auth)),
    );
    for (const task of dead) await waitFor(task.body.id, ['failed'], user.auth);
    const working = { prompt: 'always works', provider: 'fake', model: 'task-v1' };
    const answers = await Promise.all([
      ...dead.map((task) => api(easel.url, 'POST', `/v1/tasks/${task.body.id}/retry`, undefined, user.auth)),
      ...Array.from({ length: 20 }, () => api(easel.url, 'POST', '/v1/tasks', working, user.auth)),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual(Array(25).fill(202));
    for (const answer of answers) await waitFor(answer.body.id, ['succeeded', 'failed'], user.auth);
    // 20 successes at 0.2; the retried dead letters failed again and cost nothing.
    expect(await balanceOf(user.auth)).toEqual({ balance: 46, held: 0, available: 46 });
    await expectLedgerConsistent(easel.pool);
  }, 60_000);
});

describe('a routed task', () => {
  it('holds the most its targets cost, and is captured once, at the price of the target it succeeded on', async () => {
    const user = await newUser('routed', 2);
    scripts.set('routed', async (input, ctx) => {
      if (input.model === 'task-v1') throw new RetryableError('DOWN', 'the first target is down');
      return succeedAfter(2)(input, ctx);
    });
    const answer = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { prompt: 'routed', model: 'paid', max_attempts: 1 },
      user.auth,
    );
    expect(answer.status).toBe(202);
    const { rows: holds } = await easel.pool.query<{ amount: number; prices: Record<string, unknown> }>(
      'SELECT amount, prices FROM credit_holds WHERE task_id = $1',
      [answer.body.id],
    );
    expect(Object.keys(holds[0]!.prices).sort()).toEqual(['fake/fake-v1', 'fake/task-v1']);
    expect(holds[0]!.amount).toBeGreaterThanOrEqual(200_000);
    const done = await waitFor(answer.body.id, ['succeeded'], user.auth);
    expect(done).toMatchObject({ provider: 'fake', model: 'fake-v1', cost: 0.02, hold: null });
    expect(done.route?.fallbacks).toHaveLength(1);
    const entries = await ledgerOf(easel.pool, user.id);
    expect(entries.filter((entry) => entry.kind === 'capture')).toEqual([
      { kind: 'capture', amount: -20_000, held: -20_000, task_id: answer.body.id },
    ]);
    expect(await balanceOf(user.auth)).toEqual({ balance: 1.98, held: 0, available: 1.98 });
    await expectLedgerConsistent(easel.pool);
  });
});

describe('credit routes', () => {
  it('tops up once per Idempotency-Key; the same key with another request is 409; the ledger pages newest first', async () => {
    const user = await newUser('top-up');
    const route = `/v1/users/${user.id}/credits`;
    const headers = { 'idempotency-key': 'top-up-1' };
    const first = await api<{ entry: LedgerEntry; balance: Balance }>(
      easel.url,
      'POST',
      route,
      { amount: 2.5, reason: 'welcome' },
      headers,
    );
    expect(first.status).toBe(201);
    expect(first.body.balance).toEqual({ balance: 2.5, held: 0, available: 2.5 });
    expect(first.body.entry).toMatchObject({ kind: 'top_up', amount: 2.5, held: 0, reason: 'welcome' });
    const replays = await Promise.all(
      Array.from({ length: 5 }, () =>
        api<{ entry: LedgerEntry }>(easel.url, 'POST', route, { amount: 2.5, reason: 'welcome' }, headers),
      ),
    );
    for (const replay of replays) {
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body.entry.id).toBe(first.body.entry.id);
    }
    const conflict = await api<Problem>(easel.url, 'POST', route, { amount: 3, reason: 'welcome' }, headers);
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await balanceOf(user.auth)).toEqual({ balance: 2.5, held: 0, available: 2.5 });

    for (const [i, amount] of [-0.1, -0.2, -0.3, -0.4].entries()) {
      const adjusted = await api(easel.url, 'POST', route, { amount, reason: `fix ${i + 1}`, kind: 'adjustment' });
      expect(adjusted.status).toBe(201);
    }
    const seen: LedgerEntry[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const page = await api<{ data: LedgerEntry[]; next_cursor: string | null }>(
        easel.url,
        'GET',
        `/v1/me/ledger${query}`,
        undefined,
        user.auth,
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.data);
      cursor = page.body.next_cursor;
    }
    expect(seen.map((entry) => entry.reason)).toEqual(['fix 4', 'fix 3', 'fix 2', 'fix 1', 'welcome']);
    expect(seen[0]).toMatchObject({
      kind: 'adjustment',
      amount: -0.4,
      actor_id: '00000000-0000-0000-0000-000000000001',
    });
    expect((await balanceOf(user.auth)).balance).toBe(1.5);
    await expectLedgerConsistent(easel.pool);
  });

  it('refuses bad amounts, unknown users and non-admins, writing nothing', async () => {
    const user = await newUser('refusals', 1);
    const route = `/v1/users/${user.id}/credits`;
    const refusals: Array<[unknown, number, string]> = [
      [{ amount: 0.0000001, reason: 'too fine' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 0, reason: 'nothing' }, 400, 'VALIDATION_FAILED'],
      [{ amount: -1, reason: 'negative top-up' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 0, reason: 'zero', kind: 'adjustment' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 1e10, reason: 'too much' }, 400, 'VALIDATION_FAILED'],
      [{ amount: '1', reason: 'a string' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 1 }, 400, 'VALIDATION_FAILED'],
      [{ amount: 1, reason: 'x', kind: 'capture' }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [body, status, code] of refusals) {
      const answer = await api<Problem>(easel.url, 'POST', route, body);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(answer.body.code).toBe(code);
    }
    const unknown = await api<Problem>(easel.url, 'POST', `/v1/users/${crypto.randomUUID()}/credits`, {
      amount: 1,
      reason: 'nobody',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('USER_NOT_FOUND');
    const deleted = await newUser('deleted');
    await easel.pool.query('UPDATE users SET deleted_at = now() WHERE id = $1', [deleted.id]);
    expect((await api(easel.url, 'POST', `/v1/users/${deleted.id}/credits`, { amount: 1, reason: 'x' })).status).toBe(
      404,
    );
    const asUser = await api<Problem>(easel.url, 'POST', route, { amount: 100, reason: 'myself' }, user.auth);
    expect(asUser.status).toBe(403);
    expect(asUser.body.code).toBe('ADMIN_REQUIRED');
    const badCursor = await api<Problem>(easel.url, 'GET', '/v1/me/ledger?cursor=abc', undefined, user.auth);
    expect(badCursor.body.code).toBe('INVALID_CURSOR');
    expect((await ledgerOf(easel.pool, user.id)).map((entry) => entry.kind)).toEqual(['top_up']);
    expect(await balanceOf(user.auth)).toEqual({ balance: 1, held: 0, available: 1 });
    // The ledger is append-only, in the database itself.
    await expect(easel.pool.query('UPDATE credit_ledger SET amount = 0')).rejects.toThrow(/append-only/);
    await expect(easel.pool.query('DELETE FROM credit_ledger')).rejects.toThrow(/append-only/);
    await expectLedgerConsistent(easel.pool);
  });
});
