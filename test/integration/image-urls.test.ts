import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/auth/api-keys.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestS3, type TestS3 } from '../helpers/s3-server.js';
import { dataUrl, solidPng } from '../helpers/images.js';

/** Absolute and signed image links with the local folder, and S3 with a public bucket URL. */
interface Problem {
  code: string;
}

let databaseUrl: string;
const running: TestEasel[] = [];
const { key: adminKey } = generateKey();
const auth = { authorization: `Bearer ${adminKey}` };
const SECRET_KEY = randomBytes(32).toString('hex');

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
});
// Each local folder is its own: one test's worker must not take the next test's tasks.
afterEach(async () => {
  for (const easel of running.splice(0)) await easel.stop();
});

const start = async (env: Record<string, string>, options: { log?: pino.Logger; worker?: boolean } = {}) => {
  const easel = await startTestEasel(databaseUrl, {
    env: { EASEL_AUTH: 'required', EASEL_ADMIN_KEY: adminKey, ...env },
    roles: { api: true, worker: options.worker ?? true },
    ...(options.log ? { log: options.log } : {}),
  });
  running.push(easel);
  return easel;
};

const finishedTask = async (easel: TestEasel, prompt: string) => {
  const submitted = await api(easel.url, 'POST', '/v1/tasks', { prompt, width: 64, height: 64 }, auth);
  expect(submitted.status).toBe(202);
  return waitForStatus(easel.url, submitted.body.id, ['succeeded'], 20_000, auth);
};

const sha256 = (data: ArrayBuffer) => createHash('sha256').update(Buffer.from(data)).digest('hex');

describe('image links with the local folder', () => {
  it('are absolute from the request, signed with a key derived from EASEL_SECRET_KEY, and streamed without an API key', async () => {
    const easel = await start({ EASEL_SECRET_KEY: SECRET_KEY, EASEL_SIGNED_URL_SECONDS: '3' });
    const task = await finishedTask(easel, 'local links');
    const image = task.images[0]!;
    expect(image.url).toBe(`${easel.url}/v1/tasks/${task.id}/images/0`);
    expect(image.signed_url?.startsWith(`${image.url}?expires=`)).toBe(true);

    const keyless = await fetch(image.signed_url!, { redirect: 'manual' });
    expect(keyless.status).toBe(200);
    expect(keyless.headers.get('content-type')).toBe('image/png');
    expect(sha256(await keyless.arrayBuffer())).toBe(image.sha256);
    const head = await fetch(image.signed_url!, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length')]).toEqual([200, String(image.bytes)]);
    // The signature stands alone: a wrong key alongside it changes nothing.
    expect((await fetch(image.signed_url!, { headers: { authorization: 'Bearer nonsense' } })).status).toBe(200);

    // Forwarded headers are not trusted for links; the Host header is (the host check vets it).
    const viaProxy = await api(easel.url, 'GET', `/v1/tasks/${task.id}`, undefined, {
      ...auth,
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
    });
    expect(viaProxy.body.images[0]!.url).toBe(image.url);

    const cut = await api<Problem>(easel.url, 'GET', `${new URL(image.signed_url!).pathname}?expires=1`);
    expect([cut.status, cut.body.code]).toEqual([403, 'SIGNED_URL_INVALID']);
    await new Promise((resolve) => setTimeout(resolve, 4100));
    const expired = await api<Problem>(easel.url, 'GET', image.signed_url!.slice(easel.url.length));
    expect([expired.status, expired.body.code]).toEqual([403, 'SIGNED_URL_EXPIRED']);
  }, 60_000);

  it('use EASEL_PUBLIC_URL as the base and EASEL_URL_SIGNING_KEY to sign', async () => {
    const easel = await start({
      EASEL_PUBLIC_URL: 'https://images.example.com/',
      EASEL_ALLOWED_HOSTS: 'images.example.com',
      EASEL_URL_SIGNING_KEY: 'x'.repeat(48),
    });
    const task = await finishedTask(easel, 'public links');
    const image = task.images[0]!;
    expect(image.url).toBe(`https://images.example.com/v1/tasks/${task.id}/images/0`);
    const path = image.signed_url!.slice('https://images.example.com'.length);
    expect((await fetch(easel.url + path)).status).toBe(200);
    // Signed under another key, the same path is refused.
    const other = await start({ EASEL_URL_SIGNING_KEY: 'y'.repeat(48) }, { worker: false });
    const refused = await api<Problem>(other.url, 'GET', path);
    expect([refused.status, refused.body.code]).toEqual([403, 'SIGNED_URL_INVALID']);
  }, 60_000);

  it('without any key signed_url is null, signed requests are refused, and the log says why once', async () => {
    const lines: string[] = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const easel = await start({}, { log });
    const task = await finishedTask(easel, 'no signing key');
    expect(task.images[0]!.signed_url).toBeNull();
    await api(easel.url, 'GET', `/v1/tasks/${task.id}`, undefined, auth);
    const attempt = await api<Problem>(
      easel.url,
      'GET',
      `/v1/tasks/${task.id}/images/0?expires=9999999999&signature=${'A'.repeat(43)}`,
    );
    expect([attempt.status, attempt.body.code]).toEqual([403, 'SIGNED_URL_INVALID']);
    expect(lines.filter((line) => line.includes('no key to sign image URLs'))).toHaveLength(1);
  }, 60_000);
});

describe('image links with S3 and a public bucket URL', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3({ bucket: 'public-images' });
  });
  afterAll(async () => {
    await s3?.close();
  });

  it("sign an img2img task's input image too, served from the bucket without a key", async () => {
    const easel = await start({ ...s3.env, EASEL_URL_SIGNING_KEY: 'w'.repeat(48) });
    const submitted = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      {
        prompt: 'from the bucket',
        kind: 'img2img',
        image: dataUrl(await solidPng(16, 16, [9, 99, 199])),
        width: 64,
        height: 64,
      },
      auth,
    );
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const task = await waitForStatus(easel.url, submitted.body.id, ['succeeded'], 20_000, auth);
    const input = task.input_image!;
    expect(input.url).toBe(`${easel.url}/v1/tasks/${task.id}/input-image`);
    const keyless = await fetch(input.signed_url!);
    expect(keyless.status).toBe(200);
    expect(sha256(await keyless.arrayBuffer())).toBe(input.sha256);
    // A signature for the input image is not one for the output image, nor the other way round.
    const swapped = input.signed_url!.replace('/input-image?', '/images/0?');
    expect((await fetch(swapped)).status).toBe(403);
  }, 60_000);

  it('redirect to the public URL of the object, also from a signed URL', async () => {
    const easel = await start({
      ...s3.env,
      S3_PUBLIC_BASE_URL: `${s3.endpoint}/${s3.bucket}`,
      EASEL_URL_SIGNING_KEY: 'z'.repeat(48),
      EASEL_PRESIGN_SECONDS: '600',
    });
    const task = await finishedTask(easel, 'public bucket');
    const image = task.images[0]!;
    for (const request of [
      fetch(image.url, { headers: auth, redirect: 'manual' }),
      fetch(image.signed_url!, { redirect: 'manual' }),
    ]) {
      const answer = await request;
      expect(answer.status).toBe(302);
      expect(answer.headers.get('cache-control')).toBe('private, max-age=300');
      const location = answer.headers.get('location')!;
      expect(location).toMatch(
        new RegExp(`^${s3.endpoint}/${s3.bucket}/tasks/[0-9a-f]{2}/${task.id}-[0-9a-f]{8}-0\\.png$`),
      );
      expect(sha256(await (await fetch(location)).arrayBuffer())).toBe(image.sha256);
    }
  }, 60_000);

  it('another API process with the same EASEL_SECRET_KEY accepts the signed URLs of the first', async () => {
    const easel = await start({ ...s3.env, EASEL_SECRET_KEY: SECRET_KEY });
    const twin = await start({ ...s3.env, EASEL_SECRET_KEY: SECRET_KEY }, { worker: false });
    const task = await finishedTask(easel, 'shared key');
    const path = task.images[0]!.signed_url!.slice(easel.url.length);
    const answer = await fetch(twin.url + path, { redirect: 'manual' });
    expect(answer.status).toBe(302);
    expect(answer.headers.get('location')).toContain('X-Amz-Signature=');
  }, 60_000);
});
