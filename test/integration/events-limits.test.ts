import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase } from '../helpers/database.js';
import { eventually } from '../helpers/processes.js';
import { openSse, type SseRecorder } from '../helpers/sse.js';

let perUser: TestEasel;
let perProcess: TestEasel;
const open: SseRecorder[] = [];

beforeAll(async () => {
  const url = await createTestDatabase();
  const roles = { api: true, worker: false };
  perUser = await startTestEasel(url, { roles, env: { EASEL_SSE_MAX_PER_USER: '2' } });
  perProcess = await startTestEasel(url, {
    roles,
    env: { EASEL_SSE_MAX_PER_USER: '20', EASEL_SSE_MAX_CONNECTIONS: '1' },
  });
});
afterAll(async () => {
  for (const stream of open) stream.close();
  await perProcess?.stop();
  await perUser?.stop();
});

async function connect(base: string): Promise<SseRecorder> {
  const stream = await openSse(`${base}/v1/events`);
  open.push(stream);
  await stream.waitFor((messages) => messages.some((m) => m.event === 'connected'));
  return stream;
}

async function expectRefused(base: string, detail: RegExp) {
  const refused = await api<{ code: string; status: number; detail: string }>(base, 'GET', '/v1/events');
  expect(refused.status).toBe(429);
  expect(refused.headers.get('content-type')).toContain('application/problem+json');
  expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(refused.body).toMatchObject({ code: 'TOO_MANY_STREAMS', status: 429 });
  expect(refused.body.detail).toMatch(detail);
}

describe('SSE connection limits', () => {
  it('refuses a user past EASEL_SSE_MAX_PER_USER with 429, and a closed stream frees its slot', async () => {
    const first = await connect(perUser.url);
    await connect(perUser.url);
    await expectRefused(perUser.url, /2 open event streams/);
    first.close();
    await eventually(
      'the closed stream to free its slot',
      async () => {
        const response = await fetch(`${perUser.url}/v1/events`);
        const ok = response.status === 200;
        await response.body?.cancel();
        return ok;
      },
      5000,
      50,
    );
  });

  it('refuses anyone past EASEL_SSE_MAX_CONNECTIONS on the process', async () => {
    const only = await connect(perProcess.url);
    await expectRefused(perProcess.url, /already serves 1 event streams/);
    // Another process has slots of its own.
    expect((await fetch(`${perUser.url}/healthz`)).status).toBe(200);
    only.close();
    await eventually('the slot to be free', async () => perProcess.hub!.subscriberCount === 0, 5000, 20);
    open.push(await connect(perProcess.url));
  });

  it('refuses before any stream bytes and without counting a refused or failed request', async () => {
    // A request that fails validation after taking a slot gives it back.
    for (let i = 0; i < 3; i++) {
      const missing = await api(perProcess.url, 'GET', '/v1/events?task_id=0190a0a0-0000-7000-8000-000000000000');
      expect([404, 429]).toContain(missing.status);
    }
    for (const stream of open) stream.close();
    await eventually('every slot to be free', async () => perProcess.hub!.subscriberCount === 0, 5000, 20);
    const missing = await api(perProcess.url, 'GET', '/v1/events?task_id=0190a0a0-0000-7000-8000-000000000000');
    expect(missing.status).toBe(404);
    const again = await api(perProcess.url, 'GET', '/v1/events?task_id=0190a0a0-0000-7000-8000-000000000000');
    expect(again.status).toBe(404);
  });
});
