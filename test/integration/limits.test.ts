import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { setUserMaxPriority } from '../../src/limits/user-priority.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';

interface Problem {
  code: string;
  detail: string;
  max_priority?: number;
  max_active_tasks?: number;
  limit_per_minute?: number;
  errors?: Array<{ field: string; code: string }>;
}

const MAX_ACTIVE = 10;
const RATE = 10;
/** Queued forever: the API-only processes below run no worker. */
const job = (extra: Record<string, unknown> = {}) => ({ prompt: 'limits', provider: 'sketch', ...extra });

let databaseUrl: string;
/** Active-task and priority limits; its key budget is large enough never to matter. */
let easel: TestEasel;
/** A second API process with the same limits, so that one user's submits arrive through two. */
let easel2: TestEasel;
/** Two API processes on the same database sharing each key's budget of RATE requests a minute. */
let rateA: TestEasel;
let rateB: TestEasel;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  const apiOnly = { api: true, worker: false };
  const limited = { EASEL_USER_MAX_ACTIVE_TASKS: String(MAX_ACTIVE), EASEL_KEY_RATE_PER_MINUTE: '100000' };
  [easel, easel2, rateA, rateB] = await Promise.all([
    startTestEasel(databaseUrl, { roles: apiOnly, env: limited }),
    startTestEasel(databaseUrl, { roles: apiOnly, env: limited }),
    startTestEasel(databaseUrl, { roles: apiOnly, env: { EASEL_KEY_RATE_PER_MINUTE: String(RATE) } }),
    startTestEasel(databaseUrl, { roles: apiOnly, env: { EASEL_KEY_RATE_PER_MINUTE: String(RATE) } }),
  ]);
});
afterAll(async () => {
  await Promise.all([easel?.stop(), easel2?.stop(), rateA?.stop(), rateB?.stop()]);
});

/** A new user (role `user` unless said) with a key, as the `authorization` header to send. */
async function newUser(
  name: string,
  role: 'user' | 'admin' = 'user',
): Promise<{ id: string; auth: { authorization: string } }> {
  const id = await createUser(easel.pool, `${name} ${crypto.randomUUID()}`);
  if (role === 'admin') await easel.pool.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [id]);
  const { key } = await createApiKey(easel.pool, id, name);
  return { id, auth: { authorization: `Bearer ${key}` } };
}

async function counts(userId: string): Promise<{ tasks: number; active: number; events: number; vtime: number }> {
  const { rows } = await easel.pool.query(
    `SELECT (SELECT count(*) FROM tasks WHERE user_id = $1)::int AS tasks,
            (SELECT count(*) FROM tasks WHERE user_id = $1 AND status IN ('queued', 'running'))::int AS active,
            (SELECT count(*) FROM task_events WHERE user_id = $1)::int AS events,
            (SELECT coalesce(max(last_vtime), 0) FROM user_clocks WHERE user_id = $1)::int AS vtime`,
    [userId],
  );
  return rows[0];
}

describe('EASEL_USER_MAX_ACTIVE_TASKS', () => {
  it('of 30 concurrent submits with 5 slots left, through two API processes, accepts exactly 5; the rest are 429 and write nothing', async () => {
    const user = await newUser('crowd');
    const bystander = await newUser('bystander');
    for (let i = 0; i < MAX_ACTIVE - 5; i++) {
      expect((await api(easel.url, 'POST', '/v1/tasks', job(), user.auth)).status).toBe(202);
    }
    const [answers, other] = await Promise.all([
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          api<Problem>((i % 2 ? easel2 : easel).url, 'POST', '/v1/tasks', job(), user.auth),
        ),
      ),
      // Another user submitting during the burst is not held up by it.
      Promise.all(Array.from({ length: 3 }, () => api(easel.url, 'POST', '/v1/tasks', job(), bystander.auth))),
    ]);
    expect(other.map((answer) => answer.status)).toEqual([202, 202, 202]);
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 202)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(25);
    const refused = answers.find((answer) => answer.status === 429)!;
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(refused.body).toMatchObject({ code: 'TOO_MANY_ACTIVE_TASKS', max_active_tasks: MAX_ACTIVE });
    // Ten tasks, ten `task:queued` events and ten fair-queuing tags: the refusals left no trace.
    expect(await counts(user.id)).toEqual({ tasks: 10, active: 10, events: 10, vtime: 10 });
  });

  it('leaves another user unaffected, and frees a slot when a task is canceled', async () => {
    const full = await newUser('full');
    const other = await newUser('other');
    const ids: string[] = [];
    for (let i = 0; i < MAX_ACTIVE; i++)
      ids.push((await api(easel.url, 'POST', '/v1/tasks', job(), full.auth)).body.id);
    expect((await api<Problem>(easel.url, 'POST', '/v1/tasks', job(), full.auth)).body.code).toBe(
      'TOO_MANY_ACTIVE_TASKS',
    );
    expect((await api(easel.url, 'POST', '/v1/tasks', job(), other.auth)).status).toBe(202);
    expect((await api(easel.url, 'POST', `/v1/tasks/${ids[0]}/cancel`, undefined, full.auth)).status).toBe(200);
    expect((await api(easel.url, 'POST', '/v1/tasks', job(), full.auth)).status).toBe(202);
    expect((await api(easel.url, 'POST', '/v1/tasks', job(), full.auth)).status).toBe(429);
  });

  it('answers a repeated Idempotency-Key at the limit with its task, not 429', async () => {
    const user = await newUser('replay');
    const keyed = { ...user.auth, 'idempotency-key': 'first' };
    const first = await api(easel.url, 'POST', '/v1/tasks', job(), keyed);
    for (let i = 1; i < MAX_ACTIVE; i++) await api(easel.url, 'POST', '/v1/tasks', job(), user.auth);
    const replay = await api(easel.url, 'POST', '/v1/tasks', job(), keyed);
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.id).toBe(first.body.id);
  });

  it('counts a retry like a submit: 429 at the limit, leaving the task as it was', async () => {
    const user = await newUser('retry');
    const ids: string[] = [];
    for (let i = 0; i < MAX_ACTIVE; i++)
      ids.push((await api(easel.url, 'POST', '/v1/tasks', job(), user.auth)).body.id);
    await api(easel.url, 'POST', `/v1/tasks/${ids[0]}/cancel`, undefined, user.auth);
    expect((await api(easel.url, 'POST', '/v1/tasks', job(), user.auth)).status).toBe(202);
    const before = await counts(user.id);

    const refused = await api<Problem>(easel.url, 'POST', `/v1/tasks/${ids[0]}/retry`, undefined, user.auth);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('TOO_MANY_ACTIVE_TASKS');
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(await counts(user.id)).toEqual(before);
    expect((await api(easel.url, 'GET', `/v1/tasks/${ids[0]}`, undefined, user.auth)).body.status).toBe('canceled');

    await api(easel.url, 'POST', `/v1/tasks/${ids[1]}/cancel`, undefined, user.auth);
    const retried = await api(easel.url, 'POST', `/v1/tasks/${ids[0]}/retry`, undefined, user.auth);
    expect(retried.status).toBe(202);
    expect(retried.body.status).toBe('queued');
  });

  it('of concurrent retries and submits with one slot left accepts exactly one', async () => {
    const user = await newUser('race');
    const ids: string[] = [];
    for (let i = 0; i < MAX_ACTIVE + 4; i++) {
      ids.push((await api(easel.url, 'POST', '/v1/tasks', job(), user.auth)).body.id);
      // Keep room for the next submit: the first five end canceled, ready to retry.
      if (i < 5) await api(easel.url, 'POST', `/v1/tasks/${ids[i]}/cancel`, undefined, user.auth);
    }
    expect((await counts(user.id)).active).toBe(MAX_ACTIVE - 1);
    const answers = await Promise.all([
      ...ids.slice(0, 5).map((id) => api(easel2.url, 'POST', `/v1/tasks/${id}/retry`, undefined, user.auth)),
      ...Array.from({ length: 5 }, () => api(easel.url, 'POST', '/v1/tasks', job(), user.auth)),
    ]);
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(9);
    expect((await counts(user.id)).active).toBe(MAX_ACTIVE);
  });
});

describe('priority ceilings', () => {
  it('refuses a user more than 5 with 400 PRIORITY_NOT_ALLOWED naming the field and the maximum, writing nothing', async () => {
    const user = await newUser('eager');
    const refused = await api<Problem>(easel.url, 'POST', '/v1/tasks', job({ priority: 6 }), user.auth);
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({
      code: 'PRIORITY_NOT_ALLOWED',
      max_priority: 5,
      errors: [{ field: 'priority', code: 'PRIORITY_NOT_ALLOWED' }],
    });
    expect(refused.body.detail).toBe('priority 6 is above your maximum of 5');
    expect(await counts(user.id)).toEqual({ tasks: 0, active: 0, events: 0, vtime: 0 });
    const accepted = await api(easel.url, 'POST', '/v1/tasks', job({ priority: 5 }), user.auth);
    expect(accepted.status).toBe(202);
    expect(accepted.body.priority).toBe(5);
  });

  it('lets admins, and keyless local requests, take priority 10', async () => {
    const admin = await newUser('boss', 'admin');
    expect((await api(easel.url, 'POST', '/v1/tasks', job({ priority: 10 }), admin.auth)).body.priority).toBe(10);
    expect((await api(easel.url, 'POST', '/v1/tasks', job({ priority: 10 }))).body.priority).toBe(10);
  });

  it('follows a per-user override, lowering the default under a low ceiling', async () => {
    const user = await newUser('capped');
    expect(await setUserMaxPriority(easel.pool, user.id, 2)).toBe(true);
    expect((await api(easel.url, 'POST', '/v1/tasks', job(), user.auth)).body.priority).toBe(2);
    const refused = await api<Problem>(easel.url, 'POST', '/v1/tasks', job({ priority: 3 }), user.auth);
    expect(refused.body).toMatchObject({ code: 'PRIORITY_NOT_ALLOWED', max_priority: 2 });
    await setUserMaxPriority(easel.pool, user.id, 8);
    expect((await api(easel.url, 'POST', '/v1/tasks', job({ priority: 8 }), user.auth)).body.priority).toBe(8);
    await setUserMaxPriority(easel.pool, user.id, null);
    expect((await api(easel.url, 'POST', '/v1/tasks', job({ priority: 8 }), user.auth)).status).toBe(400);
    expect(await setUserMaxPriority(easel.pool, crypto.randomUUID(), 3)).toBe(false);
    await expect(setUserMaxPriority(easel.pool, user.id, 11)).rejects.toThrow(/0 to 10/);
  });

  it('refuses a retry of a task above the ceiling the user has now, leaving it canceled', async () => {
    const user = await newUser('demoted');
    await setUserMaxPriority(easel.pool, user.id, 9);
    const task = await api(easel.url, 'POST', '/v1/tasks', job({ priority: 9 }), user.auth);
    await api(easel.url, 'POST', `/v1/tasks/${task.body.id}/cancel`, undefined, user.auth);
    await setUserMaxPriority(easel.pool, user.id, null);
    const before = await counts(user.id);
    const refused = await api<Problem>(easel.url, 'POST', `/v1/tasks/${task.body.id}/retry`, undefined, user.auth);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'PRIORITY_NOT_ALLOWED', max_priority: 5 });
    expect(refused.body.detail).toBe("this task's priority 9 is above your maximum of 5");
    expect(await counts(user.id)).toEqual(before);
  });
});

describe('EASEL_KEY_RATE_PER_MINUTE across two API processes', () => {
  /** Seconds left in the database's current minute: tests that fill a window start early in one. */
  async function startEarlyInAMinute(): Promise<void> {
    const { rows } = await easel.pool.query(`SELECT 60 - extract(second FROM now())::float AS left`);
    const left = rows[0].left as number;
    if (left < 15) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 200));
  }
  const via = (index: number) => (index % 2 === 0 ? rateA : rateB).url;

  it('shares one budget per key between the processes, with RateLimit headers and then 429 RATE_LIMITED', async () => {
    await startEarlyInAMinute();
    const user = await newUser('chatty');
    for (let i = 0; i < RATE; i++) {
      const answer = await api(via(i), 'GET', '/v1/tasks', undefined, user.auth);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('ratelimit-limit')).toBe(String(RATE));
      expect(answer.headers.get('ratelimit-remaining')).toBe(String(RATE - 1 - i));
      expect(Number(answer.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);
      expect(Number(answer.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(60);
    }
    for (const url of [rateA.url, rateB.url]) {
      const refused = await api<Problem>(url, 'GET', '/v1/tasks', undefined, user.auth);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', limit_per_minute: RATE });
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    }
    // A refused submit writes nothing.
    expect((await api<Problem>(rateA.url, 'POST', '/v1/tasks', job(), user.auth)).status).toBe(429);
    expect(await counts(user.id)).toEqual({ tasks: 0, active: 0, events: 0, vtime: 0 });
    // Another key of the same user has a budget of its own.
    const { key } = await createApiKey(easel.pool, user.id, 'second');
    expect((await api(rateB.url, 'GET', '/v1/tasks', undefined, { authorization: `Bearer ${key}` })).status).toBe(200);
  });

  it('of 2×RATE concurrent requests split over both processes accepts exactly RATE', async () => {
    await startEarlyInAMinute();
    const user = await newUser('burst');
    const answers = await Promise.all(
      Array.from({ length: 2 * RATE }, (_, i) => api(via(i), 'GET', '/v1/queue', undefined, user.auth)),
    );
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(RATE);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(RATE);
  });

  it('starts counting afresh in a new minute', async () => {
    await startEarlyInAMinute();
    const user = await newUser('patient');
    for (let i = 0; i <= RATE; i++) await api(via(i), 'GET', '/v1/tasks', undefined, user.auth);
    expect((await api(rateA.url, 'GET', '/v1/tasks', undefined, user.auth)).status).toBe(429);
    // Aged state: the key's window as it would stand once this minute is over.
    await easel.pool.query(
      `UPDATE api_key_request_windows SET window_start = window_start - interval '1 minute'
       WHERE key_id = (SELECT id FROM api_keys WHERE user_id = $1)`,
      [user.id],
    );
    const fresh = await api(rateB.url, 'GET', '/v1/tasks', undefined, user.auth);
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('ratelimit-remaining')).toBe(String(RATE - 1));
  });

  it('never moves a window backwards: a request stamped in an older minute counts in the newer window', async () => {
    await startEarlyInAMinute();
    const user = await newUser('late');
    for (let i = 0; i < 3; i++) await api(via(i), 'GET', '/v1/tasks', undefined, user.auth);
    // As if a request of the next minute had committed first, before this one's older clock.
    await easel.pool.query(
      `UPDATE api_key_request_windows SET window_start = window_start + interval '1 minute'
       WHERE key_id = (SELECT id FROM api_keys WHERE user_id = $1)`,
      [user.id],
    );
    const late = await api(rateA.url, 'GET', '/v1/tasks', undefined, user.auth);
    expect(late.status).toBe(200);
    expect(late.headers.get('ratelimit-remaining')).toBe(String(RATE - 4));
    const { rows } = await easel.pool.query(
      `SELECT window_start > now() AS ahead FROM api_key_request_windows
       WHERE key_id = (SELECT id FROM api_keys WHERE user_id = $1)`,
      [user.id],
    );
    expect(rows).toEqual([{ ahead: true }]);
  });

  it('counts neither public routes nor keyless local requests', async () => {
    await startEarlyInAMinute();
    const user = await newUser('health');
    for (let i = 0; i < RATE; i++) await api(via(i), 'GET', '/v1/tasks', undefined, user.auth);
    for (const route of ['/healthz', '/readyz', '/openapi.json']) {
      const answer = await api(rateA.url, 'GET', route, undefined, user.auth);
      expect(answer.status, route).toBe(200);
      expect(answer.headers.get('ratelimit-limit'), route).toBeNull();
    }
    expect((await api(rateA.url, 'GET', '/v1/tasks', undefined, user.auth)).status).toBe(429);
    for (let i = 0; i < RATE + 2; i++) {
      const keyless = await api(rateB.url, 'GET', '/v1/tasks');
      expect(keyless.status).toBe(200);
      expect(keyless.headers.get('ratelimit-limit')).toBeNull();
    }
  });
});
