import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase } from '../helpers/database.js';
import { openSse, type SseRecorder } from '../helpers/sse.js';
import { eventually } from '../helpers/processes.js';

let easel: TestEasel;
let secondApi: TestEasel;

beforeAll(async () => {
  const url = await createTestDatabase();
  easel = await startTestEasel(url, { env: { EASEL_SSE_HEARTBEAT_MS: '300' } });
  // A second API process on the same database, with no worker of its own.
  secondApi = await startTestEasel(url, { roles: { api: true, worker: false } });
});
afterAll(async () => {
  await secondApi?.stop();
  await easel?.stop();
});

const terminal = (status: string) => ['succeeded', 'failed', 'canceled'].includes(status);

describe('GET /v1/events', () => {
  it('delivers queued → running → succeeded in order for one task, with connected first and heartbeats', async () => {
    const { body: task } = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'watched',
      width: 64,
      height: 64,
      steps: 5,
      provider_options: { delay_ms: 1500 },
    });
    const stream = await openSse(`${easel.url}/v1/events?task_id=${task.id}`);
    await stream.waitFor(() => stream.updates().some((u) => terminal(u.status)));
    await stream.waitFor((messages) => messages.some((m) => m.event === 'heartbeat'));
    stream.close();
    expect(stream.messages[0]!.event).toBe('connected');
    const updates = stream.updates();
    const statuses = updates.map((u) => u.status).filter((s, i, all) => s !== all[i - 1]);
    expect(statuses).toEqual(['queued', 'running', 'succeeded']);
    expect(updates.some((u) => u.type === 'task:progress')).toBe(true);
    expect(updates.every((u) => u.task_id === task.id)).toBe(true);
    const last = updates.at(-1)!;
    expect(last.images).toEqual([
      expect.objectContaining({ url: `${easel.url}/v1/tasks/${task.id}/images/0`, content_type: 'image/png' }),
    ]);
  });

  it("streams all of the caller's tasks to a client on another API process", async () => {
    const stream = await openSse(`${secondApi.url}/v1/events`);
    await stream.waitFor((messages) => messages.some((m) => m.event === 'connected'));
    const ids = await Promise.all(
      [1, 2, 3].map(
        async (i) => (await api(easel.url, 'POST', '/v1/tasks', { prompt: `fan ${i}`, width: 64, height: 64 })).body.id,
      ),
    );
    await stream.waitFor(() =>
      ids.every((id) => stream.updates().some((u) => u.task_id === id && u.status === 'succeeded')),
    );
    stream.close();
    for (const id of ids) {
      const mine = stream
        .updates()
        .filter((u) => u.task_id === id)
        .map((u) => u.type);
      expect(mine[0]).toBe('task:queued');
      expect(mine.at(-1)).toBe('task:succeeded');
    }
  });

  it('resumes from Last-Event-ID with nothing missed and nothing repeated', async () => {
    const first = await openSse(`${easel.url}/v1/events`);
    await first.waitFor((messages) => messages.some((m) => m.event === 'connected'));
    const submit = (i: number) => api(easel.url, 'POST', '/v1/tasks', { prompt: `resume ${i}`, width: 64, height: 64 });
    const early = await Promise.all([1, 2, 3].map(submit));
    await first.waitFor(() =>
      early.every(({ body }) => first.updates().some((u) => u.task_id === body.id && u.status === 'succeeded')),
    );
    const seen = first.updates();
    first.close();

    // While disconnected, more happens.
    const late = await Promise.all([4, 5, 6].map(submit));
    for (const { body } of late) await api(easel.url, 'GET', `/v1/tasks/${body.id}`);
    const lastSeen = seen.at(-1)!.event_id;
    const resumed = await openSse(`${secondApi.url}/v1/events`, { 'last-event-id': lastSeen });
    await resumed.waitFor(() =>
      late.every(({ body }) => resumed.updates().some((u) => u.task_id === body.id && u.status === 'succeeded')),
    );
    resumed.close();

    const replayed = resumed.updates();
    const seenIds = new Set(seen.map((u) => u.event_id));
    expect(replayed.filter((u) => seenIds.has(u.event_id))).toEqual([]);
    expect(new Set(replayed.map((u) => u.event_id)).size).toBe(replayed.length);

    // Together the two connections hold exactly the log, in order, from the first event seen.
    const { rows } = await easel.pool.query(
      `SELECT tx_id::text || '_' || id AS event_id FROM task_events
       WHERE (tx_id, id) >= ($1::xid8, $2::bigint) ORDER BY tx_id, id`,
      seen[0]!.event_id.split('_'),
    );
    const combined = [...seen, ...replayed].map((u) => u.event_id);
    expect(combined).toEqual(rows.map((row) => row.event_id).slice(0, combined.length));
  });

  it('forgets a client that disconnects', async () => {
    const before = easel.hub!.subscriberCount;
    const stream = await openSse(`${easel.url}/v1/events`);
    await stream.waitFor((messages) => messages.some((m) => m.event === 'connected'));
    expect(easel.hub!.subscriberCount).toBe(before + 1);
    stream.close();
    await eventually('the subscriber to be dropped', async () => easel.hub!.subscriberCount === before, 5000, 20);
  });

  it('rejects a malformed Last-Event-ID and an unknown task', async () => {
    const bad = await api<{ code: string }>(easel.url, 'GET', '/v1/events', undefined, {
      'last-event-id': 'yesterday',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('INVALID_EVENT_ID');
    const missing = await api<{ code: string }>(
      easel.url,
      'GET',
      '/v1/events?task_id=0190a0a0-0000-7000-8000-000000000000',
    );
    expect(missing.status).toBe(404);
    // Passes a lax `uuid` format check, but PostgreSQL would refuse it: a 400, not a 500.
    const urn = await api<{ code: string; errors: Array<{ pointer: string }> }>(
      easel.url,
      'GET',
      '/v1/events?task_id=urn:uuid:0190a0a0-0000-7000-8000-000000000000',
    );
    expect(urn.status).toBe(400);
    expect(urn.body.errors[0]!.pointer).toBe('/task_id');
  });
});

describe('GET /v1/events refuses unusable resume points before the stream starts', () => {
  it('answers 400 INVALID_EVENT_ID to a Last-Event-ID that parses but overflows xid8', async () => {
    for (const id of ['18446744073709551616_1', '99999999999999999999_1', '5_99999999999999999']) {
      const answer = await api<{ code: string; detail: string }>(easel.url, 'GET', '/v1/events', undefined, {
        'last-event-id': id,
      });
      expect({ id, status: answer.status, code: answer.body.code }).toEqual({
        id,
        status: 400,
        code: 'INVALID_EVENT_ID',
      });
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
    }
  });

  it('answers 400 INVALID_EVENT_ID to a Last-Event-ID from a transaction that has not happened yet', async () => {
    const answer = await api<{ code: string }>(easel.url, 'GET', '/v1/events', undefined, {
      'last-event-id': '18446744073709551615_1',
    });
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe('INVALID_EVENT_ID');
  });
});

describe('GET /v1/events?task_id= ends after the final event', () => {
  const submit = (prompt: string, options: Record<string, unknown> = {}) =>
    api(easel.url, 'POST', '/v1/tasks', { prompt, width: 64, height: 64, ...options });
  const doneOf = (stream: SseRecorder) =>
    stream.messages.filter((m) => m.event === 'done').map((m) => JSON.parse(m.data) as Record<string, unknown>);

  it('sends done with the final status after the final update, then closes', async () => {
    const { body: task } = await submit('to the end', { provider_options: { delay_ms: 300 } });
    const stream = await openSse(`${easel.url}/v1/events?task_id=${task.id}`);
    await Promise.race([stream.ended, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    stream.close();
    expect(stream.isEnded()).toBe(true);
    expect(stream.messages.at(-1)!.event).toBe('done');
    expect(stream.messages.at(-2)!.event).toBe('task_update');
    expect(stream.updates().at(-1)!.type).toBe('task:succeeded');
    expect(doneOf(stream)).toEqual([{ task_id: task.id, status: 'succeeded' }]);
  });

  it('replays a task that had already finished, then sends done', async () => {
    const { body: task } = await submit('finished before');
    await waitForStatus(easel.url, task.id, ['succeeded']);
    const stream = await openSse(`${easel.url}/v1/events?task_id=${task.id}`);
    await Promise.race([stream.ended, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    stream.close();
    expect(stream.isEnded()).toBe(true);
    expect(stream.updates()[0]!.type).toBe('task:queued');
    expect(stream.updates().at(-1)!.type).toBe('task:succeeded');
    expect(doneOf(stream)).toEqual([{ task_id: task.id, status: 'succeeded' }]);
  });

  it('sends only done to a client resuming after the final event', async () => {
    const { body: task } = await submit('resumed after the end');
    await waitForStatus(easel.url, task.id, ['succeeded']);
    const full = await openSse(`${easel.url}/v1/events?task_id=${task.id}`);
    await full.ended;
    const finalId = full.updates().at(-1)!.event_id;
    const resumed = await openSse(`${secondApi.url}/v1/events?task_id=${task.id}`, { 'last-event-id': finalId });
    await Promise.race([resumed.ended, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    resumed.close();
    expect(resumed.isEnded()).toBe(true);
    expect(resumed.updates()).toEqual([]);
    expect(doneOf(resumed)).toEqual([{ task_id: task.id, status: 'succeeded' }]);
  });

  it('ends on a canceled task too', async () => {
    const { body: task } = await submit('canceled', { provider_options: { delay_ms: 5000 } });
    const stream = await openSse(`${easel.url}/v1/events?task_id=${task.id}`);
    await stream.waitFor(() => stream.updates().length > 0);
    await api(easel.url, 'POST', `/v1/tasks/${task.id}/cancel`);
    await Promise.race([stream.ended, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    stream.close();
    expect(stream.isEnded()).toBe(true);
    expect(doneOf(stream)).toEqual([{ task_id: task.id, status: 'canceled' }]);
  });
});
