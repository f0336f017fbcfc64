import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.js';
import type { TaskResource } from '../../src/api/schemas/task.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { runCli, succeeded } from '../helpers/processes.js';
import { openSse } from '../helpers/sse.js';
import { dataUrl, solidPng } from '../helpers/images.js';
import { startHuggingFaceFake, type HuggingFaceFake } from '../fakes/huggingface.js';
import { startReplicateFake, type ReplicateFake } from '../fakes/replicate.js';
import { FakeOpenAI } from '../fakes/openai.js';
import { writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * A whole hosted run through a real Easel and the three providers' fakes: tasks on each
 * provider, failures of every kind (5xx, 429, refused tokens, a target that is down, a refused
 * request), a route falling through, and everything the run printed or answered captured, to
 * show that no secret appears anywhere.
 */
const SECRETS = {
  replicate: 'r8_SecretReplicateToken0123456789abcdefgh',
  hfRefused: 'hf_SecretRefusedToken0123456789abcd',
  hfGood: 'hf_SecretGoodToken0123456789abcdefgh',
  openai: 'sk-SecretOpenAIKey0123456789abcdefghijkl',
  secretKey: 'd'.repeat(64),
  adminSecret: 'admin-SecretStatusView-0123456789',
};

let replicate: ReplicateFake;
let huggingface: HuggingFaceFake;
let openai: FakeOpenAI;
let easel: TestEasel;
const logLines: string[] = [];
const answers: string[] = [];

/** `api` that keeps every answer for the final search. */
async function call<T = TaskResource>(method: string, route: string, body?: unknown) {
  const response = await api<T>(easel.url, method, route, body);
  // The answer only: the request's own URL may carry a secret the test sent (token-status).
  answers.push(`${response.status} ${JSON.stringify(response.body)} ${JSON.stringify([...response.headers])}`);
  return response;
}
const finish = async (id: string) => {
  const task = await waitForStatus(easel.url, id, ['succeeded', 'failed', 'canceled'], 30_000);
  answers.push(JSON.stringify(task));
  return task;
};

beforeAll(async () => {
  replicate = await startReplicateFake({ tokens: [SECRETS.replicate] });
  // The refused token is unknown to the fake: every use of it is a 401.
  huggingface = await startHuggingFaceFake({ tokens: [SECRETS.hfGood] });
  openai = await new FakeOpenAI([SECRETS.openai]).start();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'easel-hosted-'));
  const routesFile = path.join(dir, 'routes.yaml');
  await writeFile(
    routesFile,
    `routes:
  resilient:
    targets:
      - { provider: openai, model: dall-e-2, defaults: { width: 256, height: 256 } }
      - { provider: huggingface, model: black-forest-labs/FLUX.1-schnell, defaults: { width: 256, height: 256, steps: 2 } }
`,
  );
  const capture = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  easel = await startTestEasel(await createTestDatabase(), {
    log: pino({ level: 'trace' }, capture),
    env: {
      REPLICATE_BASE_URL: `${replicate.url}/v1`,
      REPLICATE_POLL_INTERVAL_MS: '50',
      REPLICATE_API_TOKEN: SECRETS.replicate,
      HF_BASE_URL: huggingface.url,
      HUGGING_FACE_TOKENS: `${SECRETS.hfRefused},${SECRETS.hfGood}`,
      OPENAI_BASE_URL: openai.baseUrl,
      OPENAI_API_KEY: SECRETS.openai,
      EASEL_SECRET_KEY: SECRETS.secretKey,
      ADMIN_SECRET: SECRETS.adminSecret,
      EASEL_ROUTES_FILE: routesFile,
      EASEL_MAX_ATTEMPTS: '2',
      LOG_LEVEL: 'trace',
    },
  });
});
afterAll(async () => {
  await easel?.stop();
  await Promise.all([replicate?.close(), huggingface?.close(), openai?.close()]);
});

describe('a hosted run with failures', () => {
  it('runs tasks on every provider through their failures', async () => {
    const events = await openSse(`${easel.url}/v1/events`);
    // Replicate: a 500 on create, then a 429 with Retry-After, then success.
    replicate.failNext(500, { path: /predictions$/ });
    const onReplicate = await call('POST', '/v1/tasks', { provider: 'replicate', prompt: '1girl, lantern festival' });
    // Hugging Face: whichever token comes first, the refused one is disabled and the good one serves.
    const onHf = await call('POST', '/v1/tasks', {
      provider: 'huggingface',
      prompt: 'harbour',
      width: 256,
      height: 256,
    });
    // OpenAI edits, after a 429 that names its wait in milliseconds.
    openai.failNext({ status: 429, code: 'rate_limit_exceeded', headers: { 'retry-after-ms': '200' } });
    const input = dataUrl(await solidPng(64, 64, [200, 40, 40]));
    const onOpenAI = await call('POST', '/v1/tasks', {
      provider: 'openai',
      model: 'gpt-image-1',
      kind: 'img2img',
      image: input,
      prompt: 'the same, at night',
    });
    for (const submitted of [onReplicate, onHf, onOpenAI]) expect(submitted.status).toBe(202);
    const done = await Promise.all([onReplicate, onHf, onOpenAI].map((submitted) => finish(submitted.body.id)));
    expect(done.map((task) => task.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    for (const task of done) {
      const image = await fetch(task.images[0]!.url);
      expect(image.status).toBe(200);
      expect(image.headers.get('content-type')).toMatch(/^image\//);
    }
    events.close();
    answers.push(...events.messages.map((message) => message.data));
  });

  it('falls through a route whose first target is down, and not when the request itself is refused', async () => {
    openai.failNext({ status: 500, message: 'The server had an error' });
    openai.failNext({ status: 502, rawBody: '<html>bad gateway</html>' });
    const moved = await call('POST', '/v1/tasks', { model: 'resilient', prompt: 'a lighthouse' });
    const movedDone = await finish(moved.body.id);
    expect(movedDone).toMatchObject({ status: 'succeeded', provider: 'huggingface', route: { target: 1 } });
    expect(movedDone.route!.fallbacks).toEqual([
      { provider: 'openai', model: 'dall-e-2', error: expect.objectContaining({ code: 'PROVIDER_UNAVAILABLE' }) },
    ]);

    openai.failNext({ status: 400, code: 'content_policy_violation', message: 'Your request was rejected.' });
    const refused = await call('POST', '/v1/tasks', { model: 'resilient', prompt: 'something refused' });
    const refusedDone = await finish(refused.body.id);
    expect(refusedDone).toMatchObject({ status: 'failed', provider: 'openai', error: { code: 'CONTENT_POLICY' } });
    expect(refusedDone.route!.fallbacks).toEqual([]);
  });

  it('never shows a secret: not in logs, answers, events, status views or the CLI', async () => {
    await call('GET', '/v1/providers');
    await call('GET', '/v1/routes');
    await call('GET', '/v1/queue');
    await call('GET', '/v1/tasks?limit=100');
    const credentials = await call<{ data: Array<{ state: string; label: string }> }>('GET', '/v1/admin/credentials');
    // The refused Hugging Face token was disabled on the way.
    expect(credentials.body.data.find((row) => row.label.endsWith('[1]'))?.state).toBe('disabled');
    await call('GET', `/api/token-status?secret=${encodeURIComponent(SECRETS.adminSecret)}`);
    await call('GET', '/api/token-status?secret=wrong-secret-of-some-length');
    const cli = succeeded(await runCli(['credentials', 'ls'], { env: { EASEL_URL: easel.url } }));
    answers.push(cli.stdout, cli.stderr);

    const everything = [...logLines, ...answers].join('\n');
    // The capture is real: it holds the run's log lines and answers.
    expect(logLines.length).toBeGreaterThan(20);
    expect(logLines.some((line) => line.includes('"msg":"request"'))).toBe(true);
    expect(everything).toContain('PROVIDER_CREDENTIAL_REJECTED');
    for (const [name, secret] of Object.entries(SECRETS)) {
      expect(everything.includes(secret), `${name} appears in the captured run`).toBe(false);
    }
  });
});
