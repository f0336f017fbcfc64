import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitTask } from '../../src/tasks/submit.js';
import { claimTasks } from '../../src/tasks/claim.js';
import { succeedAttempt, failAttempt } from '../../src/tasks/attempt.js';
import { rescueLostTasks } from '../../src/tasks/rescue.js';
import { queuePosition } from '../../src/tasks/position.js';
import { QueuePositions } from '../../src/tasks/queue-positions.js';
import type { TaskRow } from '../../src/tasks/rows.js';
import type { Pool } from '../../src/db/pool.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase, createTestPool, createUser } from '../helpers/database.js';
import { waitForServerUptime } from '../helpers/queue.js';

/** Queue behaviour through a running Easel (API + worker) on its own database. */
describe('retries, failures and cancel', () => {
  let easel: TestEasel;
  beforeAll(async () => {
    easel = await startTestEasel(await createTestDatabase());
  });
  afterAll(async () => {
    await easel?.stop();
  });

  const submit = (options: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'faulty',
      width: 64,
      height: 64,
      steps: 2,
      provider_options: options,
      ...extra,
    });

  it('backs off after retryable faults and then succeeds', async () => {
    const { body } = await submit({ fail: 'retryable', fail_attempts: 2 });
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(done.attempt).toBe(3);
    const { rows } = await easel.pool.query(
      `SELECT type, created_at, data->'run_after' AS run_after FROM task_events
       WHERE task_id = $1 AND type <> 'task:progress' ORDER BY id`,
      [body.id],
    );
    expect(rows.map((row) => row.type)).toEqual([
      'task:queued',
      'task:running',
      'task:retrying',
      'task:running',
      'task:retrying',
      'task:running',
      'task:succeeded',
    ]);
    // Each retry waited for its backoff before running again.
    const retries = rows.filter((row) => row.type === 'task:retrying');
    const reruns = rows.filter((row) => row.type === 'task:running').slice(1);
    retries.forEach((retry, i) =>
      expect(reruns[i]!.created_at.getTime()).toBeGreaterThanOrEqual(new Date(retry.run_after).getTime() - 5),
    );
  });

  it('honours a rate limit hint, then succeeds', async () => {
    const { body } = await submit({ fail: 'rate_limited', fail_attempts: 1, retry_after_ms: 400 });
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    const { rows } = await easel.pool.query(
      `SELECT type, created_at FROM task_events WHERE task_id = $1 AND type IN ('task:retrying', 'task:running') ORDER BY id`,
      [body.id],
    );
    expect(rows[2].created_at.getTime() - rows[1].created_at.getTime()).toBeGreaterThanOrEqual(380);
  });

  it('fails at once on a permanent fault', async () => {
    const { body } = await submit({ fail: 'permanent' });
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ status: 'failed', attempt: 1, error: { code: 'PROVIDER_REJECTED' } });
    expect(done.error!.message.length).toBeGreaterThan(0);
  });

  it('keeps a task that used all its attempts as a failed dead letter with the last error, and retries it on request', async () => {
    const { body } = await submit({ fail: 'retryable' }, { max_attempts: 3 });
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ status: 'failed', attempt: 3, error: { code: 'PROVIDER_UNAVAILABLE' } });
    const listed = await api<{ data: { id: string }[] }>(easel.url, 'GET', '/v1/tasks?status=failed');
    expect(listed.body.data.map((task) => task.id)).toContain(body.id);

    const retried = await api(easel.url, 'POST', `/v1/tasks/${body.id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: 'queued', attempt: 0, error: null });
    expect((await waitForStatus(easel.url, body.id, ['failed'])).attempt).toBe(3);

    const notRetryable = await api<{ code: string }>(
      easel.url,
      'POST',
      `/v1/tasks/${(await submit({})).body.id}/retry`,
    );
    expect(notRetryable.status).toBe(409);
    expect(notRetryable.body.code).toBe('TASK_NOT_RETRYABLE');
  });

  it("cancels a running task: the adapter's signal fires and the task ends canceled", async () => {
    const { body } = await submit({ delay_ms: 20_000 }, { steps: 20 });
    await waitForStatus(easel.url, body.id, ['running']);
    const started = Date.now();
    const response = await api(easel.url, 'POST', `/v1/tasks/${body.id}/cancel`);
    expect(response.status).toBe(202);
    const done = await waitForStatus(easel.url, body.id, ['canceled', 'succeeded', 'failed'], 5000);
    expect(done.status).toBe('canceled');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(done.images).toEqual([]);
  });
});

/** An API with no worker anywhere: tasks stay queued, so queued-state behaviour is deterministic. */
describe('API without workers', () => {
  let easel: TestEasel;
  beforeAll(async () => {
    easel = await startTestEasel(await createTestDatabase(), { roles: { api: true, worker: false } });
  });
  afterAll(async () => {
    await easel?.stop();
  });

  it('cancels a queued task at once, and only once', async () => {
    const { body } = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'never runs', width: 64, height: 64 });
    expect(body).toMatchObject({ status: 'queued', queue_position: 0, eta_seconds: null });
    const canceled = await api(easel.url, 'POST', `/v1/tasks/${body.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ status: 'canceled', cancel_requested: true });
    const again = await api<{ code: string }>(easel.url, 'POST', `/v1/tasks/${body.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('TASK_NOT_CANCELABLE');
    const retried = await api(easel.url, 'POST', `/v1/tasks/${body.id}/retry`);
    expect(retried.body.status).toBe('queued');
  });

  it('reports queue positions in order', async () => {
    const first = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'first', width: 64, height: 64 });
    const second = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'second', width: 64, height: 64 });
    const urgent = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'urgent', width: 64, height: 64, priority: 10 });
    expect(urgent.body.queue_position).toBe(0);
    expect((await api(easel.url, 'GET', `/v1/tasks/${second.body.id}`)).body.queue_position).toBe(
      (await api(easel.url, 'GET', `/v1/tasks/${first.body.id}`)).body.queue_position! + 1,
    );
  });
});

/** The queue's SQL alone, without a worker, so order and fencing can be inspected step by step. */
describe('queue order and fencing', () => {
  let pool: Pool;
  const workerId = '0190a0a0-0000-7000-8000-00000000aaaa';
  beforeAll(async () => {
    pool = await createTestPool(await createTestDatabase());
    await pool.query('INSERT INTO workers (id, host, pid, concurrency) VALUES ($1, $2, $3, $4)', [
      workerId,
      'test',
      1,
      10,
    ]);
  });
  afterAll(async () => {
    await pool?.end();
  });

  const enqueue = async (userId: string, prompt: string, priority = 5, provider = 'p1') => {
    const outcome = await submitTask(pool, NO_HINTS, {
      userId,
      kind: 'txt2img',
      provider,
      model: 'm',
      params: { prompt, negative_prompt: null, width: 64, height: 64, steps: 1, guidance: 7, n: 1, seed: 1 },
      providerOptions: {},
      priority,
      maxAttempts: 3,
    });
    return outcome.task;
  };
  const claim = (provider: string, want = 1, providerLimit = 100) =>
    claimTasks(pool, NO_HINTS, { provider, workerId, want, providerLimit, deadAfterMs: 30_000 });

  it("does not let one user's burst of 200 delay another user's later task past the burst's next few", async () => {
    const alice = await createUser(pool, 'alice');
    const bob = await createUser(pool, 'bob');
    for (let i = 0; i < 200; i++) await enqueue(alice, `alice ${i}`, 5, 'fair');
    // Alice's first two tasks run, then Bob submits one.
    await claim('fair', 2);
    const bobs = await enqueue(bob, 'bob', 5, 'fair');
    expect(await queuePosition(pool, bobs)).toBeLessThanOrEqual(3);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(...(await claim('fair', 1)).map((task) => task.params.prompt));
    expect(order.indexOf('bob')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('bob')).toBeLessThanOrEqual(3);
  });

  it('runs higher priority first, then by age', async () => {
    const user = await createUser(pool, 'prio');
    await enqueue(user, 'low', 1, 'prio');
    await enqueue(user, 'high', 9, 'prio');
    await enqueue(user, 'mid', 5, 'prio');
    await enqueue(user, 'high again', 9, 'prio');
    const claimed = await claim('prio', 4);
    expect(claimed.map((task) => task.params.prompt)).toEqual(['high', 'high again', 'mid', 'low']);
  });

  it('never runs more than the provider limit across claims', async () => {
    const user = await createUser(pool, 'limit');
    for (let i = 0; i < 10; i++) await enqueue(user, `l${i}`, 5, 'limited');
    const claimed = await Promise.all(Array.from({ length: 6 }, () => claim('limited', 3, 4)));
    expect(claimed.flat()).toHaveLength(4);
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM tasks WHERE provider = 'limited' AND status = 'running'`,
    );
    expect(rows[0].n).toBe(4);
  });

  it('ignores a late write from an attempt whose lease was taken over', async () => {
    const user = await createUser(pool, 'fence');
    const task = await enqueue(user, 'fenced', 5, 'fence');
    const [first] = await claim('fence');
    // The worker goes silent; the rescuer re-queues its task and another claim takes it.
    await pool.query(`UPDATE workers SET last_seen_at = now() - interval '1 hour' WHERE id = $1`, [workerId]);
    await waitForServerUptime(pool, 1000);
    const rescued = await rescueLostTasks(pool, NO_HINTS, { deadAfterMs: 1000, taskTimeoutMs: 300_000 });
    expect(rescued.map((row) => row.id)).toContain(task.id);
    await pool.query(`UPDATE workers SET last_seen_at = now() WHERE id = $1`, [workerId]);
    const [second] = await claim('fence');
    expect(second!.id).toBe(task.id);
    expect(second!.lease_token).not.toBe(first!.lease_token);

    const stale = { taskId: task.id, token: first!.lease_token!, provider: 'fence' };
    const image = {
      index: 0,
      storage_key: 'x',
      content_type: 'image/png',
      bytes: 1,
      width: 1,
      height: 1,
      seed: 1,
      sha256: 'x',
      thumbnail_bytes: null,
      thumbnail_width: null,
      thumbnail_height: null,
      thumbnail_sha256: null,
    };
    expect(await succeedAttempt(pool, NO_HINTS, stale, { predictTimeSeconds: 1, images: [image] })).toBe(false);
    expect(await failAttempt(pool, NO_HINTS, stale, { code: 'LATE', message: 'late' }, 1)).toBe(false);
    const { rows } = await pool.query('SELECT status, attempt FROM tasks WHERE id = $1', [task.id]);
    expect(rows[0]).toEqual({ status: 'running', attempt: 2 });
    expect(
      (await pool.query('SELECT count(*)::int AS n FROM task_images WHERE task_id = $1', [task.id])).rows[0].n,
    ).toBe(0);

    const fresh = { taskId: task.id, token: second!.lease_token!, provider: 'fence' };
    expect(await succeedAttempt(pool, NO_HINTS, fresh, { predictTimeSeconds: 1, images: [image] })).toBe(true);
    expect(await succeedAttempt(pool, NO_HINTS, fresh, { predictTimeSeconds: 1, images: [image] })).toBe(false);
  });

  it('counts queue position in run order', async () => {
    const user = await createUser(pool, 'pos');
    const tasks: TaskRow[] = [];
    for (let i = 0; i < 5; i++) tasks.push(await enqueue(user, `pos ${i}`, 5, 'pos'));
    expect(await Promise.all(tasks.map((task) => queuePosition(pool, task)))).toEqual([0, 1, 2, 3, 4]);
    const urgent = await enqueue(user, 'urgent', 10, 'pos');
    expect(await queuePosition(pool, urgent)).toBe(0);
    expect(await queuePosition(pool, tasks[0]!)).toBe(1);
  });

  it('estimates deep queue positions from a snapshot: exact at the front, tracking claims behind it', async () => {
    const user = await createUser(pool, 'deep');
    const tasks: TaskRow[] = [];
    for (let i = 0; i < 700; i++) tasks.push(await enqueue(user, `deep ${i}`, 5, 'deep'));
    const positions = new QueuePositions(pool, { spacing: 64, minAgeMs: 60_000 });
    const probes = [0, 1, 63, 64, 65, 300, 699];
    expect(await Promise.all(probes.map((i) => positions.position(tasks[i]!)))).toEqual(probes);
    // 100 claims later, with the snapshot not yet refreshed, every position moved up by 100.
    for (let i = 0; i < 10; i++) await claim('deep', 10, 1000);
    const after = [150, 300, 699];
    expect(await Promise.all(after.map((i) => positions.position(tasks[i]!)))).toEqual(after.map((i) => i - 100));
    expect(await Promise.all(after.map((i) => queuePosition(pool, tasks[i]!)))).toEqual(after.map((i) => i - 100));
  });

  it('fails a task whose last attempt was lost, with WORKER_LOST', async () => {
    const user = await createUser(pool, 'lost');
    const task = await enqueue(user, 'lost', 5, 'lost');
    await pool.query('UPDATE tasks SET max_attempts = 1 WHERE id = $1', [task.id]);
    await claim('lost');
    await pool.query(`UPDATE workers SET last_seen_at = now() - interval '1 hour' WHERE id = $1`, [workerId]);
    await waitForServerUptime(pool, 1000);
    await rescueLostTasks(pool, NO_HINTS, { deadAfterMs: 1000, taskTimeoutMs: 300_000 });
    await pool.query(`UPDATE workers SET last_seen_at = now() WHERE id = $1`, [workerId]);
    const { rows } = await pool.query('SELECT status, error FROM tasks WHERE id = $1', [task.id]);
    expect(rows[0]).toMatchObject({ status: 'failed', error: { code: 'WORKER_LOST' } });
  });
});
