import { createHash, createHmac, randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../../src/providers/errors.js';
import { readJimengConfig } from '../../src/providers/volcengine/config.js';
import { createJimengProvider } from '../../src/providers/volcengine/index.js';
import { volcengineSecret } from '../../src/providers/volcengine/keys.js';
import { signVolcengineRequest } from '../../src/providers/volcengine/signer.js';
import type { Provider, TaskInput } from '../../src/providers/types.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus } from '../helpers/easel.js';
import { dataUrl, solidPng } from '../helpers/images.js';
import { createRunContext, taskInput, rejectionOf } from '../helpers/run-context.js';
import { startFakeVolcengineVisual, type FakeVolcengineVisual } from '../fakes/volcengine-visual.js';

/** The visual API's answers, as far as these tests read them. */
interface Answer {
  code?: number;
  data?: { task_id?: string };
  ResponseMetadata: { Service?: string; Error: { Code: string; CodeN?: number } };
}

const AK = 'AKLTtestAccessKey0001';
const SK = 'dGVzdFNlY3JldEFjY2Vzc0tleQ==';
const SECRET = volcengineSecret(AK, SK);
const credential = { id: 'cred-1', label: 'test pair', secret: SECRET };

let fake: FakeVolcengineVisual;
let provider: Provider;

beforeAll(async () => {
  fake = await startFakeVolcengineVisual({ [AK]: SK });
  provider = createJimengProvider(
    readJimengConfig({ VOLCENGINE_VISUAL_BASE_URL: fake.url, VOLCENGINE_POLL_INTERVAL_MS: '10' }),
  );
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.reset();
});

const v30 = (overrides: Partial<TaskInput> = {}) =>
  taskInput({ model: 'jimeng_t2i_v30', width: 1328, height: 1328, steps: 1, ...overrides });

async function run(input: TaskInput, options: { signal?: AbortSignal; secret?: string } = {}) {
  const { ctx, record } = createRunContext({
    credential: { ...credential, secret: options.secret ?? SECRET },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const images = await provider.run(input, ctx);
  return { images, record };
}

const failure = (input: TaskInput, options: { secret?: string } = {}): Promise<Error> =>
  rejectionOf(run(input, options));

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('volcengine visual fake: signature', () => {
  /** A request to the fake signed by our signer, with `tamper` applied after signing. */
  async function send(tamper: { body?: string; xDate?: string; contentType?: string } = {}, secret = SK) {
    const url = new URL(`${fake.url}/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31`);
    const body = JSON.stringify({ req_key: 'jimeng_t2i_v30', prompt: 'a cat', seed: -1, width: 1328, height: 1328 });
    const { host: _host, ...headers } = signVolcengineRequest({
      method: 'POST',
      url,
      body,
      contentType: 'application/json',
      region: 'cn-north-1',
      service: 'cv',
      keys: { accessKeyId: AK, secretAccessKey: secret },
    });
    if (tamper.xDate) headers['x-date'] = tamper.xDate;
    if (tamper.contentType) headers['content-type'] = tamper.contentType;
    const response = await fetch(url, { method: 'POST', headers, body: tamper.body ?? body });
    return { status: response.status, body: (await response.json()) as Answer };
  }

  it('accepts a request signed by our signer', async () => {
    const { status, body } = await send();
    expect(status).toBe(200);
    expect(body).toMatchObject({ code: 10000, data: { task_id: expect.any(String) } });
    expect(fake.requests.at(-1)!.signedHeaders).toBe('content-type;host;x-content-sha256;x-date');
  });

  it('refuses a tampered body, header or date, and a wrong secret key, with the gateway error envelope', async () => {
    const before = fake.tasks.size;
    const tampered = await send({
      body: JSON.stringify({ req_key: 'jimeng_t2i_v30', prompt: 'a dog', seed: -1, width: 1328, height: 1328 }),
    });
    expect(tampered.status).toBe(401);
    // The body no longer matches its signed hash.
    expect(tampered.body.ResponseMetadata.Error).toMatchObject({ Code: 'SignatureDoesNotMatch', CodeN: 100010 });
    const otherType = await send({ contentType: 'application/json; charset=utf-8' });
    expect(otherType.body.ResponseMetadata.Error.Code).toBe('SignatureDoesNotMatch');
    const now = new Date();
    const lateDate = new Date(now.getTime() + 1000)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const moved = await send({ xDate: lateDate });
    expect(moved.body.ResponseMetadata.Error.Code).toBe('SignatureDoesNotMatch');
    const wrongKey = await send({}, 'bm90VGhlU2VjcmV0');
    expect(wrongKey.body.ResponseMetadata).toMatchObject({ Service: 'cv', Error: { Code: 'SignatureDoesNotMatch' } });
    expect(fake.tasks.size).toBe(before);
  });

  it('verifies over whatever SignedHeaders the client declares (the Node SDK signs only x-content-sha256;x-date)', async () => {
    // A second, minimal signer written here, as volc-sdk-nodejs signs: content-type and host unsigned.
    const url = `${fake.url}/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31`;
    const body = JSON.stringify({ req_key: 'jimeng_t2i_v30', prompt: 'a cat' });
    const xDate = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const hash = createHash('sha256').update(body).digest('hex');
    const canonical = `POST\n/\nAction=CVSync2AsyncSubmitTask&Version=2022-08-31\nx-content-sha256:${hash}\nx-date:${xDate}\n\nx-content-sha256;x-date\n${hash}`;
    const scope = `${xDate.slice(0, 8)}/cn-north-1/cv/request`;
    const toSign = `HMAC-SHA256\n${xDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    let key: Buffer = Buffer.from(SK);
    for (const part of [xDate.slice(0, 8), 'cn-north-1', 'cv', 'request'])
      key = createHmac('sha256', key).update(part).digest();
    const signature = createHmac('sha256', key).update(toSign).digest('hex');
    const headers = {
      'content-type': 'application/json',
      'x-date': xDate,
      'x-content-sha256': hash,
      authorization: `HMAC-SHA256 Credential=${AK}/${scope}, SignedHeaders=x-content-sha256;x-date, Signature=${signature}`,
    };
    const accepted = await fetch(url, { method: 'POST', headers, body });
    expect(accepted.status).toBe(200);
    // Signing only x-date is not enough: the body hash must be covered.
    const weak = await fetch(url, {
      method: 'POST',
      headers: { ...headers, authorization: headers.authorization.replace('x-content-sha256;x-date', 'x-date') },
      body,
    });
    expect(weak.status).toBe(401);
    const missing = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(((await missing.json()) as Answer).ResponseMetadata.Error.Code).toBe('MissingAuthenticationToken');
  });
});

describe('jimeng: models', () => {
  it('lists the Jimeng req_keys with kinds, sizes and option schemas', () => {
    const byId = Object.fromEntries(provider.models().map((model) => [model.id, model]));
    expect(Object.keys(byId)).toEqual(['jimeng_t2i_v30', 'jimeng_t2i_v31', 'jimeng_t2i_v40', 'jimeng_i2i_v30']);
    expect(byId.jimeng_t2i_v30).toMatchObject({ kinds: ['txt2img'], maxWidth: 2048, maxN: 1 });
    expect(byId.jimeng_i2i_v30!.kinds).toEqual(['img2img']);
    expect(Object.keys(byId.jimeng_t2i_v40!.options!.properties)).toEqual(
      expect.arrayContaining(['scale', 'force_single', 'return_url', 'logo_info']),
    );
  });
});

describe('jimeng: generation', () => {
  it('submits with the req_key’s own fields, saves the task id, reports queue states and decodes base64', async () => {
    fake.queuedPolls = 2;
    fake.generatingPolls = 2;
    const { images, record } = await run(v30({ seed: 4_000_000_000, options: { use_pre_llm: false } }));
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({
      contentType: 'image/jpeg',
      width: 1328,
      height: 1328,
      seed: 4_000_000_000 % 2 ** 31,
    });
    const submit = fake.submits().at(-1)!;
    expect(submit.body).toEqual({
      req_key: 'jimeng_t2i_v30',
      prompt: 'a lighthouse at dusk',
      seed: 4_000_000_000 % 2 ** 31,
      width: 1328,
      height: 1328,
      use_pre_llm: false,
    });
    expect(submit.accessKeyId).toBe(AK);
    expect(record.providerRefs).toEqual([
      fake.requests.find((r) => r.action === 'CVSync2AsyncGetResult' && r.body.task_id)!.body.task_id,
    ]);
    const stages = record.progress.map((p) => p.stage);
    expect(stages.slice(0, 2)).toEqual(['submitting', 'queued']);
    expect(stages).toContain('generating');
    expect(stages.indexOf('generating')).toBeGreaterThan(stages.lastIndexOf('queued'));
    const poll = fake.requests.at(-1)!;
    expect(poll.body).toMatchObject({ req_key: 'jimeng_t2i_v30', req_json: '{"return_url":false}' });
  });

  it('asks for URLs with return_url and downloads them; passes the logo in req_json', async () => {
    const downloads = fake.downloads;
    const { images } = await run(
      taskInput({
        model: 'jimeng_t2i_v40',
        width: 2048,
        height: 1536,
        options: { return_url: true, scale: 0.8, logo_info: { add_logo: true, language: 1 } },
      }),
    );
    expect(images[0]).toMatchObject({ width: 2048, height: 1536, contentType: 'image/jpeg' });
    expect(fake.downloads).toBe(downloads + 1);
    expect(fake.submits().at(-1)!.body).toEqual({
      req_key: 'jimeng_t2i_v40',
      prompt: 'a lighthouse at dusk',
      width: 2048,
      height: 1536,
      force_single: true,
      scale: 0.8,
    });
    expect(JSON.parse(String(fake.requests.at(-1)!.body.req_json))).toEqual({
      return_url: true,
      logo_info: { add_logo: true, language: 1 },
    });
  });

  it('img2img with jimeng_i2i_v30: the input as binary_data_base64, strength as scale', async () => {
    const png = await solidPng(768, 512, [10, 200, 30]);
    const { images } = await run(
      taskInput({
        model: 'jimeng_i2i_v30',
        kind: 'img2img',
        width: 768,
        height: 512,
        strength: 0.3,
        inputImage: { data: png, contentType: 'image/png', width: 768, height: 512 },
      }),
    );
    expect(images[0]).toMatchObject({ width: 768, height: 512 });
    const body = fake.submits().at(-1)!.body;
    expect(body).toMatchObject({ req_key: 'jimeng_i2i_v30', scale: 0.3, width: 768, height: 512 });
    expect(body.binary_data_base64).toEqual([png.toString('base64')]);
  });

  it('refuses sizes, n, kinds and options the model does not take, before calling Volcengine', async () => {
    const before = fake.requests.length;
    expect(await failure(taskInput({ model: 'jimeng_t2i_v40', width: 512, height: 512 }))).toMatchObject({
      code: 'UNSUPPORTED_SIZE',
    });
    expect(await failure(v30({ n: 2 }))).toMatchObject({ code: 'UNSUPPORTED_N' });
    expect(await failure(v30({ kind: 'img2img' }))).toMatchObject({ code: 'UNSUPPORTED_KIND' });
    expect(await failure(v30({ options: { scale: 3 } }))).toMatchObject({ code: 'INVALID_PROVIDER_OPTIONS' });
    expect(await failure(v30({ model: 'jimeng_t2i_v99' }))).toMatchObject({ code: 'UNKNOWN_MODEL' });
    expect(fake.requests.length).toBe(before);
  });
});

describe('jimeng: resume', () => {
  it('a rescued attempt with providerRef polls the earlier task instead of submitting again', async () => {
    fake.queuedPolls = 3;
    const first = await run(v30());
    const taskId = first.record.providerRefs[0]!;
    const submits = fake.submits().length;
    const resumed = await run(v30({ attempt: 2, providerRef: taskId }));
    expect(resumed.images).toHaveLength(1);
    expect(fake.submits().length).toBe(submits);
    expect(resumed.record.providerRefs).toEqual([]);
  });

  it('a resumed attempt waits out a failing first poll instead of submitting a second, paid task', async () => {
    fake.queuedPolls = 2;
    const controller = new AbortController();
    const { ctx, record } = createRunContext({ credential, signal: controller.signal });
    const pending = provider.run(v30(), ctx);
    await waitUntil(() => record.providerRefs.length === 1);
    controller.abort(new Error('lease lost'));
    await expect(pending).rejects.toThrow('lease lost');
    const submits = fake.submits().length;
    fake.failResult({ status: 503, code: 'ServiceUnavailable', message: 'try later' });
    fake.failResult({ status: 500, code: 50500, message: 'Internal Error' });
    const resumed = await run(v30({ attempt: 2, providerRef: record.providerRefs[0]! }));
    expect(resumed.images).toHaveLength(1);
    expect(fake.submits().length).toBe(submits);
  });

  it('a providerRef Volcengine no longer knows (expired after 12 h) is submitted again and the new id saved', async () => {
    const first = await run(v30());
    const taskId = first.record.providerRefs[0]!;
    fake.expire(taskId);
    const submits = fake.submits().length;
    const again = await run(v30({ attempt: 2, providerRef: taskId }));
    expect(again.images).toHaveLength(1);
    expect(fake.submits().length).toBe(submits + 1);
    expect(again.record.providerRefs).toHaveLength(1);
    expect(again.record.providerRefs[0]).not.toBe(taskId);
  });

  it('shutdown mid-poll: the attempt stops with the signal’s reason and the saved task can be resumed', async () => {
    fake.queuedPolls = 1000;
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const { ctx, record } = createRunContext({ credential, signal: controller.signal });
    const pending = provider.run(v30(), ctx);
    await waitUntil(() => record.providerRefs.length === 1 && record.progress.some((p) => p.stage === 'queued'));
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    fake.queuedPolls = 0;
    fake.generatingPolls = 0;
    const submits = fake.submits().length;
    const resumed = await run(v30({ attempt: 2, providerRef: record.providerRefs[0]! }));
    expect(resumed.images).toHaveLength(1);
    expect(fake.submits().length).toBe(submits);
  });
});

describe('jimeng: failures', () => {
  it('risk-control refusals are permanent CONTENT_POLICY with a clear message', async () => {
    fake.failSubmit({ status: 400, code: 50412, message: 'Text Risk Not Pass' });
    const text = await failure(v30());
    expect(text).toBeInstanceOf(PermanentError);
    expect(text).toMatchObject({ code: 'CONTENT_POLICY' });
    expect(text.message).toMatch(
      /content review: the prompt did not pass content review \(code 50412 Text Risk Not Pass\)/,
    );
    fake.failSubmit({ status: 400, code: 50411, message: 'Pre Img Risk Not Pass' });
    expect(await failure(v30())).toMatchObject({ code: 'CONTENT_POLICY' });
  });

  it('an output-review refusal when done is retryable (another sample may pass), not polled again', async () => {
    fake.failWhenDone({ status: 400, code: 50511, message: 'Post Img Risk Not Pass' });
    const polls = () => fake.requests.filter((r) => r.action === 'CVSync2AsyncGetResult').length;
    const before = polls();
    const error = await failure(v30());
    expect(error).toBeInstanceOf(RetryableError);
    expect(error).toMatchObject({ code: 'PROVIDER_OUTPUT_REFUSED' });
    expect(polls() - before).toBe(3);
  });

  it('QPS and concurrency limits are rate limits', async () => {
    fake.failSubmit({ status: 429, code: 50429, message: 'Request Has Reached API Limit, Please Try Later' });
    const qps = await failure(v30());
    expect(qps).toBeInstanceOf(RateLimitedError);
    expect(qps.message).toContain('QPS limit');
    fake.failSubmit({
      status: 429,
      code: 50430,
      message: 'Request Has Reached API Concurrent Limit, Please Try Later',
    });
    expect((await failure(v30())).message).toContain('concurrency limit');
  });

  it('auth failures are credential errors and never carry the secret key', async () => {
    const wrong = await failure(v30(), { secret: volcengineSecret(AK, 'd3JvbmdTZWNyZXQ=') });
    expect(wrong).toBeInstanceOf(CredentialError);
    expect(wrong.message).toContain('SignatureDoesNotMatch');
    expect(wrong.message).not.toContain('d3JvbmdTZWNyZXQ=');
    const unknown = await failure(v30(), { secret: volcengineSecret('AKLTnobody', SK) });
    expect(unknown).toBeInstanceOf(CredentialError);
    expect(unknown.message).not.toContain(SK);
    fake.failSubmit({
      status: 403,
      code: 'AccessDenied',
      codeN: 100013,
      message: 'User is not authorized to perform: cv:CVSync2AsyncSubmitTask',
    });
    expect(await failure(v30())).toBeInstanceOf(CredentialError);
    fake.failSubmit({ status: 403, code: 'AccountArrears', message: 'the account is in arrears' });
    expect(await failure(v30())).toBeInstanceOf(QuotaExceededError);
  });

  it('5xx and internal errors are retryable; transient poll failures are waited out', async () => {
    fake.failSubmit({ status: 500, code: 50500, message: 'Internal Error' });
    expect(await failure(v30())).toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    fake.failSubmit({ status: 503, code: 'ServiceUnavailable', message: 'try later' });
    expect(await failure(v30())).toBeInstanceOf(RetryableError);
    // Two bad polls in a row, then the task finishes: one submit, images delivered.
    const submits = fake.submits().length;
    fake.failResult({ status: 502, code: 50501, message: 'Internal RPC Error' });
    fake.failResult({ status: 429, code: 50429, message: 'QPS' });
    const { images } = await run(v30());
    expect(images).toHaveLength(1);
    expect(fake.submits().length).toBe(submits + 1);
  });

  it('malformed answers are retryable PROVIDER_BAD_OUTPUT', async () => {
    fake.malformNext('not-json');
    expect(await failure(v30())).toMatchObject({ code: 'PROVIDER_BAD_OUTPUT' });
    fake.malformNext('no-task-id');
    expect((await failure(v30())).message).toContain('no task_id');
    fake.malformNext('not-an-image');
    expect((await failure(v30())).message).toContain('not an image');
    fake.malformNext('no-images');
    expect((await failure(v30())).message).toContain('no images');
  });

  it('a slow answer is aborted promptly with the signal’s reason; an aborted run sends nothing', async () => {
    fake.slow(30_000);
    const controller = new AbortController();
    const reason = new Error('attempt timed out');
    const aborted = fake.aborted;
    const pending = run(v30(), { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 200);
    await expect(pending).rejects.toBe(reason);
    await waitUntil(() => fake.aborted > aborted);
    fake.slow(0);
    const before = fake.requests.length;
    const done = new AbortController();
    done.abort(reason);
    await expect(run(v30(), { signal: done.signal })).rejects.toBe(reason);
    expect(fake.requests.length).toBe(before);
  });

  it('an unreachable API is PROVIDER_UNREACHABLE', async () => {
    const offline = createJimengProvider(readJimengConfig({ VOLCENGINE_VISUAL_BASE_URL: 'http://127.0.0.1:9' }));
    const { ctx } = createRunContext({ credential });
    await expect(offline.run(v30(), ctx)).rejects.toMatchObject({ code: 'PROVIDER_UNREACHABLE' });
  });
});

describe('jimeng: through Easel', () => {
  it('runs tasks with the env key pair from the pool; a risk refusal fails the task, a QPS limit cools the credential', async () => {
    const easel = await startTestEasel(await createTestDatabase(), {
      env: {
        VOLCENGINE_VISUAL_BASE_URL: fake.url,
        VOLCENGINE_POLL_INTERVAL_MS: '20',
        VOLCENGINE_ACCESS_KEY: AK,
        VOLCENGINE_SECRET_KEY: SK,
        EASEL_SECRET_KEY: randomBytes(32).toString('hex'),
      },
    });
    try {
      const providers = await api<{ data: Array<{ id: string; models: Array<{ id: string }> }> }>(
        easel.url,
        'GET',
        '/v1/providers',
      );
      const jimeng = providers.body.data.find((entry) => entry.id === 'jimeng');
      expect(jimeng?.models.map((model) => model.id)).toContain('jimeng_t2i_v40');

      const credentials = async () =>
        (
          await api<{ data: Array<Record<string, unknown>> }>(
            easel.url,
            'GET',
            '/v1/admin/credentials?provider=volcengine',
          )
        ).body.data;
      // The hint shows the key id's last four characters, never the secret key's.
      expect((await credentials())[0]).toMatchObject({ secret_hint: `…${AK.slice(-4)}` });

      const task = { provider: 'jimeng', model: 'jimeng_t2i_v30', prompt: 'a red fox', width: 1328, height: 1328 };
      const submitted = await api(easel.url, 'POST', '/v1/tasks', task);
      expect(submitted.status).toBe(202);
      const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
      expect(done.status).toBe('succeeded');
      expect(done.images[0]).toMatchObject({ content_type: 'image/jpeg', width: 1328, height: 1328 });
      const bytes = Buffer.from(await (await fetch(done.images[0]!.url)).arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'jpeg', width: 1328 });

      const edit = await api(easel.url, 'POST', '/v1/tasks', {
        provider: 'jimeng',
        model: 'jimeng_i2i_v30',
        kind: 'img2img',
        image: dataUrl(await solidPng(1024, 1024, [0, 0, 255])),
        prompt: 'the same, in autumn',
        width: 1024,
        height: 1024,
      });
      expect(edit.status).toBe(202);
      expect((await waitForStatus(easel.url, edit.body.id, ['succeeded', 'failed'])).status).toBe('succeeded');

      const refusedOption = await api(easel.url, 'POST', '/v1/tasks', { ...task, provider_options: { scale: 2 } });
      expect(refusedOption.status).toBe(400);

      fake.failSubmit({ status: 400, code: 50413, message: 'Post Text Risk Not Pass' });
      const blocked = await api(easel.url, 'POST', '/v1/tasks', { ...task, prompt: 'something refused' });
      const failed = await waitForStatus(easel.url, blocked.body.id, ['succeeded', 'failed']);
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatchObject({ code: 'CONTENT_POLICY' });
      expect(failed.error!.message).toContain('sensitive or copyrighted words');

      fake.failSubmit({
        status: 429,
        code: 50430,
        message: 'Request Has Reached API Concurrent Limit, Please Try Later',
      });
      const waiting = await api(easel.url, 'POST', '/v1/tasks', task);
      await waitUntil(async () => (await credentials())[0]!.state === 'cooling_down', 10_000);
      expect((await credentials())[0]).toMatchObject({ last_error: { code: 'PROVIDER_RATE_LIMITED' } });
      expect((await api(easel.url, 'GET', `/v1/tasks/${waiting.body.id}`)).body.status).toBe('queued');
    } finally {
      await easel.stop();
    }
  });
});
