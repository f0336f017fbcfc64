import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResource } from '../../src/api/schemas/task.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel, waitForStatus } from '../helpers/easel.js';
import { solidPng } from '../helpers/images.js';
import { openSse } from '../helpers/sse.js';

/**
 * Two users and an admin against EASEL_AUTH=required, walking every route of the OpenAPI
 * document: a user reaches only their own tasks, images, uploads and events (another user's is
 * a 404, exactly like a task that does not exist); an admin reaches any task by id, while lists
 * stay the caller's own. A route added later without a walk here fails the last test.
 */

interface Problem {
  code: string;
}
interface Operation {
  responses: Record<string, unknown>;
  security?: unknown[];
}
interface Caller {
  id: string;
  key: string;
}

const ADMIN_SECRET = 'isolation-admin-secret-0001';
let easel: TestEasel;
let alice: Caller;
let bob: Caller;
let admin: Caller;
/** Every `METHOD /path` this file checks beyond the generic 401/403 walk. */
const walked = new Set<string>();

const as = <T = TaskResource>(caller: Caller, method: string, route: string, body?: unknown, headers = {}) =>
  api<T>(easel.url, method, route, body, { authorization: `Bearer ${caller.key}`, ...headers });

async function makeCaller(name: string, role: 'user' | 'admin'): Promise<Caller> {
  const { rows } = await easel.pool.query<{ id: string }>(
    'INSERT INTO users (id, name, role) VALUES (gen_random_uuid(), $1, $2) RETURNING id',
    [name, role],
  );
  const id = rows[0]!.id;
  return { id, key: (await createApiKey(easel.pool, id, name)).key };
}

const waitFor = (caller: Caller, taskId: string, statuses: string[]): Promise<TaskResource> =>
  waitForStatus(easel.url, taskId, statuses, 20_000, { authorization: `Bearer ${caller.key}` });

async function submit(caller: Caller, body: Record<string, unknown>, headers = {}): Promise<TaskResource> {
  const answer = await as(caller, 'POST', '/v1/tasks', { width: 64, height: 64, steps: 1, ...body }, headers);
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return answer.body;
}

async function uploadAs(caller: Caller, bytes: Buffer): Promise<{ status: number; body: { id: string } }> {
  const form = new FormData();
  form.append('image', new Blob([bytes]), 'photo.png');
  const response = await fetch(`${easel.url}/v1/uploads`, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${caller.key}` },
  });
  return { status: response.status, body: (await response.json()) as { id: string } };
}

const expectNotFound = (answer: { status: number; body: unknown }, code: string, what: string) => {
  expect(answer.status, what).toBe(404);
  expect((answer.body as Problem).code, what).toBe(code);
};

// Alice's things, which Bob must never reach and the admin may reach by id.
let done: TaskResource;
let edited: TaskResource;
let failed: TaskResource;
let slow: TaskResource;
let uploadId: string;

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), {
    env: { EASEL_AUTH: 'required', ADMIN_SECRET },
  });
  [alice, bob, admin] = await Promise.all([
    makeCaller('alice', 'user'),
    makeCaller('bob', 'user'),
    makeCaller('root', 'admin'),
  ]);
  const uploaded = await uploadAs(alice, await solidPng(64, 64, [200, 10, 10]));
  expect(uploaded.status).toBe(201);
  uploadId = uploaded.body.id;
  done = await submit(alice, { prompt: 'alice only' }, { 'idempotency-key': 'shared-key' });
  edited = await submit(alice, { prompt: 'alice edits', image: `upload:${uploadId}`, kind: 'img2img' });
  failed = await submit(alice, { prompt: 'alice fails', provider_options: { fail: 'permanent' } });
  slow = await submit(alice, { prompt: 'alice waits', provider_options: { delay_ms: 600_000 } });
  done = await waitFor(alice, done.id, ['succeeded']);
  edited = await waitFor(alice, edited.id, ['succeeded']);
  failed = await waitFor(alice, failed.id, ['failed']);
}, 60_000);
afterAll(async () => {
  await easel?.stop();
});

describe('tasks', () => {
  it('GET /v1/tasks/{id}: the owner and an admin see it; another user gets 404', async () => {
    walked.add('GET /v1/tasks/{id}');
    expect((await as(alice, 'GET', `/v1/tasks/${done.id}`)).status).toBe(200);
    expectNotFound(await as(bob, 'GET', `/v1/tasks/${done.id}`), 'TASK_NOT_FOUND', 'bob');
    const seen = await as(admin, 'GET', `/v1/tasks/${done.id}`);
    expect(seen.status).toBe(200);
    expect(seen.body.id).toBe(done.id);
    // An admin is not told more than the owner: an unknown id is the same 404.
    expectNotFound(await as(admin, 'GET', `/v1/tasks/${crypto.randomUUID()}`), 'TASK_NOT_FOUND', 'admin');
  });

  it('GET /v1/tasks: each caller lists only their own tasks, admins included', async () => {
    walked.add('GET /v1/tasks');
    const mine = await submit(bob, { prompt: 'bob only' });
    const aliceIds = [done.id, edited.id, failed.id, slow.id];
    const ids = async (caller: Caller, query = '') =>
      (await as<{ data: TaskResource[] }>(caller, 'GET', `/v1/tasks${query}`)).body.data.map((task) => task.id);
    expect(await ids(alice)).toEqual(expect.arrayContaining(aliceIds));
    expect(await ids(alice)).not.toContain(mine.id);
    expect(await ids(bob)).toEqual([mine.id]);
    expect(await ids(bob, '?status=succeeded')).not.toEqual(expect.arrayContaining([done.id]));
    expect(await ids(admin)).toEqual([]);
  });

  it("POST /v1/tasks: an Idempotency-Key is per user, so the same key never replays another user's task", async () => {
    walked.add('POST /v1/tasks');
    const answer = await as(
      bob,
      'POST',
      '/v1/tasks',
      { prompt: 'bob, same key', width: 64, height: 64, steps: 1 },
      {
        'idempotency-key': 'shared-key',
      },
    );
    expect(answer.status).toBe(202);
    expect(answer.headers.get('idempotent-replayed')).toBeNull();
    expect(answer.body.id).not.toBe(done.id);
    // Another user's upload is no input for Bob: the same answer as an unknown upload.
    const stolen = await as<Problem>(bob, 'POST', '/v1/tasks', {
      prompt: 'steal',
      image: `upload:${uploadId}`,
      kind: 'img2img',
    });
    expect(stolen.status).toBe(400);
    expect(stolen.body.code).toBe('UPLOAD_NOT_FOUND');
  });

  it('POST /v1/uploads: an upload belongs to its uploader only', async () => {
    walked.add('POST /v1/uploads');
    const own = await uploadAs(bob, await solidPng(32, 32, [0, 0, 200]));
    expect(own.status).toBe(201);
    const used = await as(bob, 'POST', '/v1/tasks', {
      prompt: 'mine',
      kind: 'img2img',
      image: `upload:${own.body.id}`,
      steps: 1,
    });
    expect(used.status).toBe(202);
    expect(
      (await as<Problem>(alice, 'POST', '/v1/tasks', { prompt: 'x', kind: 'img2img', image: `upload:${own.body.id}` }))
        .body.code,
    ).toBe('UPLOAD_NOT_FOUND');
  });

  it('GET /v1/tasks/{id}/images/{index}: the owner and an admin fetch it; another user gets 404', async () => {
    walked.add('GET /v1/tasks/{id}/images/{index}');
    const route = `/v1/tasks/${done.id}/images/0`;
    expect((await as(alice, 'GET', route)).status).toBe(200);
    expectNotFound(await as(bob, 'GET', route), 'IMAGE_NOT_FOUND', 'bob');
    const fetched = await fetch(easel.url + route, { headers: { authorization: `Bearer ${admin.key}` } });
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get('content-type')).toBe('image/png');
  });

  it('GET /v1/tasks/{id}/images/{index}/thumbnail: the owner and an admin fetch it; another user gets 404', async () => {
    walked.add('GET /v1/tasks/{id}/images/{index}/thumbnail');
    const route = `/v1/tasks/${done.id}/images/0/thumbnail`;
    expect((await as(alice, 'GET', route)).status).toBe(200);
    expectNotFound(await as(bob, 'GET', route), 'IMAGE_NOT_FOUND', 'bob');
    const fetched = await fetch(easel.url + route, { headers: { authorization: `Bearer ${admin.key}` } });
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get('content-type')).toBe('image/webp');
  });

  it("GET /v1/tasks/{id}/preview: the owner and an admin see a running task's preview; another user gets 404", async () => {
    walked.add('GET /v1/tasks/{id}/preview');
    await waitFor(alice, slow.id, ['running']);
    // Sketch shows no previews; write one as a backend's worker would (migration 0018).
    const png = await solidPng(8, 8, [0, 0, 255]);
    await easel.pool.query(
      `INSERT INTO task_previews (task_id, content_type, data, version) VALUES ($1, 'image/png', $2, 1)`,
      [slow.id, png],
    );
    await easel.pool.query('UPDATE tasks SET preview_version = 1 WHERE id = $1', [slow.id]);
    const route = `/v1/tasks/${slow.id}/preview`;
    expect((await as(alice, 'GET', route)).status).toBe(200);
    expectNotFound(await as(bob, 'GET', route), 'TASK_NOT_FOUND', 'bob');
    expect((await as(admin, 'GET', route)).status).toBe(200);
  });

  it('GET /v1/tasks/{id}/input-image: the owner and an admin fetch it; another user gets 404', async () => {
    walked.add('GET /v1/tasks/{id}/input-image');
    const route = `/v1/tasks/${edited.id}/input-image`;
    expect((await as(alice, 'GET', route)).status).toBe(200);
    expectNotFound(await as(bob, 'GET', route), 'TASK_NOT_FOUND', 'bob');
    expect((await as(admin, 'GET', route)).status).toBe(200);
  });

  it('POST /v1/tasks/{id}/retry: another user gets 404 and nothing changes; an admin retries it', async () => {
    walked.add('POST /v1/tasks/{id}/retry');
    expectNotFound(await as(bob, 'POST', `/v1/tasks/${failed.id}/retry`), 'TASK_NOT_FOUND', 'bob');
    expect((await as(alice, 'GET', `/v1/tasks/${failed.id}`)).body.status).toBe('failed');
    const retried = await as(admin, 'POST', `/v1/tasks/${failed.id}/retry`);
    expect(retried.status, JSON.stringify(retried.body)).toBe(202);
    expect(retried.body.status).toBe('queued');
    // Still Alice's task: she sees it run again (and fail again, as it was told to).
    await waitFor(alice, failed.id, ['failed']);
    const { rows } = await easel.pool.query('SELECT user_id FROM tasks WHERE id = $1', [failed.id]);
    expect(rows[0].user_id).toBe(alice.id);
  });

  it('POST /v1/tasks/{id}/cancel: another user gets 404 and nothing changes; an admin cancels it', async () => {
    walked.add('POST /v1/tasks/{id}/cancel');
    expectNotFound(await as(bob, 'POST', `/v1/tasks/${slow.id}/cancel`), 'TASK_NOT_FOUND', 'bob');
    expectNotFound(await as(bob, 'POST', `/v1/tasks/${done.id}/cancel`), 'TASK_NOT_FOUND', 'bob, finished task');
    const still = (await as(alice, 'GET', `/v1/tasks/${slow.id}`)).body;
    expect(['queued', 'running']).toContain(still.status);
    expect(still.cancel_requested).toBe(false);
    const canceled = await as(admin, 'POST', `/v1/tasks/${slow.id}/cancel`);
    expect([200, 202]).toContain(canceled.status);
    await waitFor(alice, slow.id, ['canceled']);
    // The admin is told the truth about a finished task, as its owner would be.
    expect((await as<Problem>(admin, 'POST', `/v1/tasks/${done.id}/cancel`)).body.code).toBe('TASK_NOT_CANCELABLE');
  });
});

describe('events', () => {
  it("GET /v1/events?task_id=: another user's task is 404; the owner's stream works", async () => {
    walked.add('GET /v1/events');
    const refused = await fetch(`${easel.url}/v1/events?task_id=${done.id}`, {
      headers: { authorization: `Bearer ${bob.key}`, accept: 'text/event-stream' },
    });
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as Problem).code).toBe('TASK_NOT_FOUND');
    const own = await openSse(`${easel.url}/v1/events?task_id=${done.id}`, { authorization: `Bearer ${alice.key}` });
    await own.ended;
    expect(own.updates().every((update) => update.task_id === done.id)).toBe(true);
    expect(own.messages.at(-1)?.event).toBe('done');
    // An admin may follow any task by id: the same history, to the same end.
    const followed = await openSse(`${easel.url}/v1/events?task_id=${done.id}`, {
      authorization: `Bearer ${admin.key}`,
    });
    await followed.ended;
    expect(followed.updates().map((u) => u.event_id)).toEqual(own.updates().map((u) => u.event_id));
    expect(followed.messages.at(-1)?.event).toBe('done');
  });

  it("the unfiltered stream carries only the caller's own events, even resumed from the start", async () => {
    const stream = await openSse(`${easel.url}/v1/events`, { authorization: `Bearer ${bob.key}` });
    try {
      const hers = await submit(alice, { prompt: 'alice, live' });
      await waitFor(alice, hers.id, ['succeeded']);
      const his = await submit(bob, { prompt: 'bob, live' });
      await stream.waitFor(() => stream.updates().some((u) => u.task_id === his.id && u.status === 'succeeded'));
      const ids = new Set(stream.updates().map((u) => u.task_id));
      expect(ids.has(hers.id)).toBe(false);
      const { rows } = await easel.pool.query<{ id: string }>('SELECT id FROM tasks WHERE user_id = $1', [bob.id]);
      const bobs = new Set(rows.map((r) => r.id));
      expect([...ids].every((id) => bobs.has(id))).toBe(true);
      // Resuming from the very first event replays history: still only Bob's.
      const first = stream.messages.find((m) => m.event === 'task_update')!.id!;
      const resumed = await openSse(`${easel.url}/v1/events`, {
        authorization: `Bearer ${bob.key}`,
        'last-event-id': first,
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      resumed.close();
      expect(resumed.updates().every((u) => bobs.has(u.task_id))).toBe(true);
    } finally {
      stream.close();
    }
  });
});

describe('users and keys', () => {
  it('GET /v1/me: each caller is themself', async () => {
    walked.add('GET /v1/me');
    for (const caller of [alice, bob, admin]) {
      expect((await as<{ user: { id: string } }>(caller, 'GET', '/v1/me')).body.user.id).toBe(caller.id);
    }
  });

  it("user and key routes: another user's are 404; the admin's answers", async () => {
    for (const key of [
      'GET /v1/users/{id}',
      'GET /v1/users/{id}/keys',
      'POST /v1/users/{id}/keys',
      'DELETE /v1/keys/{id}',
    ])
      walked.add(key);
    expectNotFound(await as(bob, 'GET', `/v1/users/${alice.id}`), 'USER_NOT_FOUND', 'get');
    expectNotFound(await as(bob, 'GET', `/v1/users/${alice.id}/keys`), 'USER_NOT_FOUND', 'list keys');
    expectNotFound(await as(bob, 'POST', `/v1/users/${alice.id}/keys`, {}), 'USER_NOT_FOUND', 'make a key');
    const aliceKeys = await as<{ data: Array<{ id: string }> }>(admin, 'GET', `/v1/users/${alice.id}/keys`);
    expect(aliceKeys.body.data).toHaveLength(1);
    expectNotFound(await as(bob, 'DELETE', `/v1/keys/${aliceKeys.body.data[0]!.id}`), 'KEY_NOT_FOUND', 'revoke');
    expect((await as(alice, 'GET', '/v1/me')).status).toBe(200);
    expect((await as(bob, 'GET', `/v1/users/${bob.id}`)).status).toBe(200);
  });
});

describe('every route', () => {
  let operations: Array<{ key: string; method: string; path: string; operation: Operation }>;
  beforeAll(async () => {
    const document = (await as<{ paths: Record<string, Record<string, Operation>> }>(admin, 'GET', '/openapi.json'))
      .body;
    operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        operation,
      })),
    );
  });
  const concrete = (path: string) =>
    path.replace('{id}', crypto.randomUUID()).replace('{index}', '0') +
    (path === '/api/token-status' ? `?secret=${ADMIN_SECRET}` : '');
  const isPublic = (operation: Operation) => operation.security?.length === 0;
  // Remote workers' routes take a worker token, never an API key (docs/providers/remote-workers.md).
  const isWorkerRoute = (operation: Operation) =>
    operation.security?.some((scheme) => 'workerToken' in (scheme as object)) ?? false;
  const isAdmin = (operation: Operation) => '403' in operation.responses;

  it('needs a key on every non-public route (401 AUTH_REQUIRED with WWW-Authenticate); public ones stay open', async () => {
    for (const { key, method, path, operation } of operations) {
      const body = method === 'GET' ? undefined : {};
      const keyless = await api<Problem>(easel.url, method, concrete(path), body);
      if (isPublic(operation)) {
        expect(keyless.status, key).not.toBe(401);
        continue;
      }
      if (isWorkerRoute(operation)) {
        // Neither no key nor any user's key (an admin's included) reaches a worker route.
        expect(keyless.status, key).toBe(401);
        expect(keyless.body.code, key).toBe('WORKER_TOKEN_REQUIRED');
        const keyed = await as<Problem>(admin, method, concrete(path), body);
        expect(keyed.status, key).toBe(401);
        expect(keyed.body.code, key).toBe('WORKER_TOKEN_REQUIRED');
        continue;
      }
      expect(keyless.status, key).toBe(401);
      expect(keyless.body.code, key).toBe('AUTH_REQUIRED');
      expect(keyless.headers.get('www-authenticate'), key).toBe('Bearer realm="easel"');
      const wrong = await api<Problem>(easel.url, method, concrete(path), body, {
        authorization: 'Bearer easel_sk_' + 'x'.repeat(43),
      });
      expect(wrong.status, key).toBe(401);
      expect(wrong.body.code, key).toBe('INVALID_API_KEY');
    }
  });

  it('keeps admin routes to admins: 403 ADMIN_REQUIRED for a user, never for the admin', async () => {
    const adminOnly = operations.filter(({ operation }) => isAdmin(operation));
    expect(adminOnly.map(({ key }) => key)).toEqual(
      expect.arrayContaining(['GET /v1/admin/credentials', 'POST /v1/users', 'GET /v1/users', 'DELETE /v1/users/{id}']),
    );
    for (const { key, method, path } of adminOnly) {
      const body = method === 'GET' || method === 'DELETE' ? undefined : {};
      const refused = await as<Problem>(bob, method, concrete(path), body);
      expect(refused.status, key).toBe(403);
      expect(refused.body.code, key).toBe('ADMIN_REQUIRED');
      expect((await as<Problem>(admin, method, concrete(path), body)).status, key).not.toBe(403);
    }
  });

  it('shows each user only their own balance and ledger', async () => {
    walked.add('GET /v1/me/balance');
    walked.add('GET /v1/me/ledger');
    const topUp = await as(admin, 'POST', `/v1/users/${alice.id}/credits`, { amount: 7, reason: 'isolation' });
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(201);
    expect((await as<{ balance: number }>(alice, 'GET', '/v1/me/balance')).body.balance).toBe(7);
    expect((await as<{ balance: number }>(bob, 'GET', '/v1/me/balance')).body.balance).toBe(0);
    const mine = await as<{ data: Array<{ reason: string }> }>(alice, 'GET', '/v1/me/ledger');
    expect(mine.body.data.map((entry) => entry.reason)).toContain('isolation');
    expect((await as<{ data: unknown[] }>(bob, 'GET', '/v1/me/ledger')).body.data).toEqual([]);
  });

  it('answers the shared views (providers, routes, queue) to every user', async () => {
    for (const key of ['GET /v1/providers', 'GET /v1/routes', 'GET /v1/queue']) {
      walked.add(key);
      for (const caller of [alice, bob]) expect((await as(caller, 'GET', key.split(' ')[1]!)).status, key).toBe(200);
    }
  });

  it('walks every route: each keyed, non-admin route has an ownership test above', () => {
    const unwalked = operations
      .filter(({ operation }) => !isPublic(operation) && !isAdmin(operation) && !isWorkerRoute(operation))
      .map(({ key }) => key)
      .filter((key) => !walked.has(key));
    expect(unwalked, 'routes without an isolation test in this file').toEqual([]);
  });
});
