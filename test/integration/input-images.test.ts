import { createHash, randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { ApiError } from '../../src/domain/errors.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { createUpload } from '../../src/inputs/upload-service.js';
import { createUserUrlFetcher, UserUrlFailed, UserUrlRefused, type FetchUserUrl } from '../../src/net/user-url.js';
import { createProviderRegistry } from '../../src/providers/index.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { createLocalStorage } from '../../src/storage/local.js';
import { TaskService } from '../../src/tasks/service.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { bombPng, dataUrl, meanRgb, solidPng, upload } from '../helpers/images.js';

const UPLOAD_MAX_BYTES = 200_000;
let easel: TestEasel;
let databaseUrl: string;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl, { env: { EASEL_UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES) } });
});
afterAll(async () => {
  await easel?.stop();
});

const imagesRoot = () => path.join(easel.config.dataDir, 'images');
const count = async (table: string) => Number((await easel.pool.query(`SELECT count(*) FROM ${table}`)).rows[0].count);
async function storedInputs(): Promise<string[]> {
  try {
    return (await readdir(path.join(imagesRoot(), 'inputs'), { recursive: true })).filter((name) =>
      name.endsWith('.png'),
    );
  } catch {
    return [];
  }
}
/** What exists now; a refused request must leave exactly this. */
const snapshot = async () => ({
  tasks: await count('tasks'),
  uploads: await count('uploads'),
  files: await storedInputs(),
});
const bytesOf = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The fetcher production uses, with its defaults: only public addresses. */
const guardedFetcher = createUserUrlFetcher({ allowPrivate: false, maxBytes: UPLOAD_MAX_BYTES, timeoutMs: 5000 });

/** A service of the running Easel's database and storage, for what HTTP cannot reach (other users). */
function service(fetchUserUrl: FetchUserUrl = guardedFetcher): TaskService {
  const config = loadConfig({ DATABASE_URL: databaseUrl });
  return new TaskService(easel.pool, createProviderRegistry(), config, NO_HINTS, undefined, {
    pool: easel.pool,
    storage: createLocalStorage(imagesRoot()),
    maxPixels: easel.config.inputs.maxPixels,
    fetchUserUrl,
  });
}

describe('POST /v1/uploads', () => {
  it('stores a checked PNG and answers its metadata', async () => {
    const png = await solidPng(40, 30, [0, 128, 255]);
    const { status, body } = await upload(easel.url, png);
    expect(status, JSON.stringify(body)).toBe(201);
    expect(body).toMatchObject({ content_type: 'image/png', width: 40, height: 30 });
    const row = (await easel.pool.query('SELECT * FROM uploads WHERE id = $1', [body.id])).rows[0];
    expect(row.user_id).toBe(LOCAL_USER_ID);
    // The key is random: nothing of the user or the file name.
    expect(row.storage_key).toMatch(/^inputs\/[0-9a-f]{2}\/[0-9a-f-]{36}\.png$/);
    expect(row.storage_key).not.toContain(LOCAL_USER_ID);
    expect(row.storage_key).not.toContain('photo');
  });

  it('applies the EXIF orientation and strips EXIF from a JPEG', async () => {
    const jpeg = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#00ff00' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .withExifMerge({ IFD0: { Copyright: 'secret-owner-name' } })
      .toBuffer();
    expect((await sharp(jpeg).metadata()).exif).toBeDefined();
    const { status, body } = await upload(easel.url, jpeg);
    expect(status, JSON.stringify(body)).toBe(201);
    // Orientation 6 is "rotate 90°": upright, the picture is 20 wide and 40 high.
    expect(body).toMatchObject({ content_type: 'image/png', width: 20, height: 40 });
    const row = (await easel.pool.query('SELECT storage_key FROM uploads WHERE id = $1', [body.id])).rows[0];
    const stored = await (await import('node:fs/promises')).readFile(path.join(imagesRoot(), row.storage_key));
    const metadata = await sharp(stored).metadata();
    expect(metadata.format).toBe('png');
    expect(metadata.exif).toBeUndefined();
    expect(metadata.orientation).toBeUndefined();
    expect(stored.includes('secret-owner-name')).toBe(false);
    expect(sha256(stored)).toBe(body.sha256);
  });

  it('refuses what is not an image, a decompression bomb, a file too big, another field or media type, writing nothing', async () => {
    const before = await snapshot();
    const gif = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
    const cases: Array<[Buffer, string, number, string]> = [
      [Buffer.from('not an image at all'), 'image', 400, 'INPUT_IMAGE_INVALID'],
      [gif, 'image', 400, 'INPUT_IMAGE_INVALID'],
      [bombPng(), 'image', 400, 'INPUT_IMAGE_TOO_LARGE'],
      [Buffer.alloc(UPLOAD_MAX_BYTES + 1, 1), 'image', 413, 'BODY_TOO_LARGE'],
      [await solidPng(8, 8, [1, 2, 3]), 'picture', 400, 'VALIDATION_FAILED'],
    ];
    for (const [bytes, field, status, code] of cases) {
      const answer = await upload(easel.url, bytes, field);
      expect(answer.status, `${code}: ${JSON.stringify(answer.body)}`).toBe(status);
      expect(answer.body.code).toBe(code);
    }
    const json = await api(easel.url, 'POST', '/v1/uploads', { image: 'x' });
    expect(json.status).toBe(415);
    expect(json.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await snapshot()).toEqual(before);
  });
});

describe('img2img on sketch', () => {
  it('derives the output from the input: a red input at strength 0.2 gives a mostly red image', async () => {
    const red = await solidPng(64, 64, [255, 0, 0]);
    const submitted = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'a red barn',
      kind: 'img2img',
      image: dataUrl(red),
      strength: 0.2,
      width: 64,
      height: 64,
      seed: 3,
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    expect(submitted.body.params.strength).toBe(0.2);
    const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const [r, g, b] = await meanRgb(await bytesOf(done.images[0]!.url));
    expect(r).toBeGreaterThan(200);
    expect(g).toBeLessThan(55);
    expect(b).toBeLessThan(55);

    // The input is recorded on the task (no storage key shown) and served at its own URL.
    expect(done.input_image).toMatchObject({ content_type: 'image/png', width: 64, height: 64 });
    expect(done.input_image).not.toHaveProperty('storage_key');
    expect(done.input_image!.url).toBe(`${easel.url}/v1/tasks/${done.id}/input-image`);
    const input = await fetch(done.input_image!.url);
    expect(input.status).toBe(200);
    expect(input.headers.get('content-type')).toBe('image/png');
    expect(sha256(Buffer.from(await input.arrayBuffer()))).toBe(done.input_image!.sha256);
  });

  it('at strength 1 gives exactly the txt2img image', async () => {
    const base = { prompt: 'strength one', width: 96, height: 64, seed: 11, steps: 2 };
    const plain = await api(easel.url, 'POST', '/v1/tasks', base);
    const blended = await api(easel.url, 'POST', '/v1/tasks', {
      ...base,
      kind: 'img2img',
      image: dataUrl(await solidPng(10, 10, [0, 255, 0])),
      strength: 1,
    });
    expect(plain.status, JSON.stringify(plain.body)).toBe(202);
    expect(blended.status, JSON.stringify(blended.body)).toBe(202);
    const [a, b] = await Promise.all(
      [plain.body.id, blended.body.id].map((id) => waitForStatus(easel.url, id, ['succeeded'])),
    );
    expect(b!.images[0]!.sha256).toBe(a!.images[0]!.sha256);
  });

  it('runs on an upload, defaults strength to 0.75, and shrinks an input larger than the model takes', async () => {
    const wide = await solidPng(3000, 1000, [0, 0, 255]);
    const uploaded = await upload(easel.url, wide);
    expect(uploaded.status).toBe(201);
    const submitted = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'from an upload',
      kind: 'img2img',
      image: `upload:${String(uploaded.body.id)}`,
      width: 64,
      height: 64,
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    expect(submitted.body.params.strength).toBe(0.75);
    // sketch-v1 takes up to 2048x2048: 3000x1000 becomes 2048x683, aspect kept.
    expect(submitted.body.input_image).toMatchObject({ width: 2048, height: 683 });
    const done = await waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const [, , blue] = await meanRgb(await bytesOf(done.images[0]!.url));
    expect(blue).toBeGreaterThan(60);

    // The same upload serves again, as is when it fits.
    const small = await upload(easel.url, await solidPng(32, 32, [9, 9, 9]));
    const again = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'reuse',
      kind: 'img2img',
      image: `upload:${String(small.body.id)}`,
    });
    const twice = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'reuse',
      kind: 'img2img',
      image: `upload:${String(small.body.id)}`,
    });
    expect(again.body.input_image!.sha256).toBe(small.body.sha256);
    expect(twice.body.input_image!.sha256).toBe(small.body.sha256);
  });

  it('refuses bad inputs at submit with a 400 naming /image, writing nothing', async () => {
    const before = await snapshot();
    const submit = (extra: Record<string, unknown>) =>
      api(easel.url, 'POST', '/v1/tasks', { prompt: 'refused', kind: 'img2img', ...extra });
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ image: 'upload:0190a0a0-0000-7000-8000-000000000000' }, 'UPLOAD_NOT_FOUND', '/image'],
      [{ image: 'upload:not-a-uuid' }, 'UPLOAD_NOT_FOUND', '/image'],
      [{ image: 'data:image/png;base64,@@@@' }, 'INPUT_IMAGE_INVALID', '/image'],
      [{ image: 'data:image/png,rawtext' }, 'INPUT_IMAGE_INVALID', '/image'],
      [{ image: dataUrl(Buffer.from('hello, not a picture')) }, 'INPUT_IMAGE_INVALID', '/image'],
      [{ image: dataUrl(bombPng()) }, 'INPUT_IMAGE_TOO_LARGE', '/image'],
      [{ image: 'ftp://example.com/a.png' }, 'INPUT_IMAGE_INVALID', '/image'],
      [{ image: 'http://127.0.0.1:9/a.png' }, 'INPUT_IMAGE_URL_REFUSED', '/image'],
      [{ image: 'http://169.254.169.254/latest/meta-data/' }, 'INPUT_IMAGE_URL_REFUSED', '/image'],
      [{ image: 'http://[::ffff:10.0.0.1]/a.png' }, 'INPUT_IMAGE_URL_REFUSED', '/image'],
      [{}, 'VALIDATION_FAILED', '/image'],
      [{ image: dataUrl(await solidPng(8, 8, [0, 0, 0])), strength: 1.5 }, 'VALIDATION_FAILED', '/strength'],
      [{ kind: 'txt2img', strength: 0.5 }, 'VALIDATION_FAILED', '/strength'],
      [{ kind: 'txt2img', image: 'upload:x' }, 'VALIDATION_FAILED', '/image'],
    ];
    for (const [extra, code, pointer] of cases) {
      const answer = await submit(extra);
      const what = `${JSON.stringify(extra).slice(0, 80)} → ${JSON.stringify(answer.body)}`;
      expect(answer.status, what).toBe(400);
      expect(answer.headers.get('content-type'), what).toMatch(/application\/problem\+json/);
      expect((answer.body as unknown as { code: string }).code, what).toBe(code);
      const errors = (answer.body as unknown as { errors: Array<{ pointer: string }> }).errors;
      expect(
        errors.map((error) => error.pointer),
        what,
      ).toContain(pointer);
    }
    // Multipart is parsed for uploads and submits only (multipart-submit.test.ts): elsewhere 415.
    const form = new FormData();
    form.append('reason', 'multipart');
    const multipart = await fetch(`${easel.url}/v1/tasks/${randomUUID()}/cancel`, { method: 'POST', body: form });
    expect(multipart.status).toBe(415);
    expect(await snapshot()).toEqual(before);
  });

  it('puts the input image, by content, in the idempotency fingerprint', async () => {
    const red = dataUrl(await solidPng(16, 16, [255, 0, 0]));
    const body = { prompt: 'keyed', kind: 'img2img', image: red, seed: 1 };
    const headers = { 'idempotency-key': 'img2img-fingerprint' };
    const first = await api(easel.url, 'POST', '/v1/tasks', body, headers);
    expect(first.status).toBe(202);
    const files = await storedInputs();
    const replay = await api(easel.url, 'POST', '/v1/tasks', body, headers);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.id).toBe(first.body.id);
    const other = await api(
      easel.url,
      'POST',
      '/v1/tasks',
      { ...body, image: dataUrl(await solidPng(16, 16, [0, 0, 255])) },
      headers,
    );
    expect(other.status).toBe(409);
    // Neither the replay nor the conflict kept a copy of its input.
    expect(await storedInputs()).toEqual(files);
  });
});

describe('ownership', () => {
  it("refuses another user's upload, and hides another user's task input", async () => {
    const other = await createUser(easel.pool, `other-${Date.now()}`);
    const deps = { pool: easel.pool, storage: createLocalStorage(imagesRoot()), maxPixels: 1_000_000 };
    const theirs = await createUpload(deps, other, await solidPng(16, 16, [1, 1, 1]));
    const before = await snapshot();
    const mine = service();
    const refused = await mine
      .submit(LOCAL_USER_ID, { prompt: 'not mine', kind: 'img2img', image: `upload:${theirs.id}` })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe('UPLOAD_NOT_FOUND');
    expect(await snapshot()).toEqual(before);
    // Over HTTP, as the local user, too.
    const answer = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'not mine',
      kind: 'img2img',
      image: `upload:${theirs.id}`,
    });
    expect((answer.body as unknown as { code: string }).code).toBe('UPLOAD_NOT_FOUND');

    // Their own task on their upload works; its input is not served to a third user. (The local
    // user is an admin, and admins may fetch any task's input by id.)
    const { view } = await mine.submit(other, { prompt: 'mine', kind: 'img2img', image: `upload:${theirs.id}` });
    expect(view.task.input_image?.sha256).toBe(theirs.sha256);
    const stranger = await createUser(easel.pool, `stranger-${Date.now()}`);
    const { key } = await createApiKey(easel.pool, stranger, 'test');
    const route = `/v1/tasks/${view.task.id}/input-image`;
    const hidden = await api(easel.url, 'GET', route, undefined, { authorization: `Bearer ${key}` });
    expect(hidden.status).toBe(404);
    expect((hidden.body as unknown as { code: string }).code).toBe('TASK_NOT_FOUND');
    expect((await fetch(easel.url + route)).status).toBe(200);
  });

  it('a txt2img task has no input image to serve', async () => {
    const plain = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'no input' });
    expect(plain.body.input_image).toBeNull();
    const missing = await api(easel.url, 'GET', `/v1/tasks/${plain.body.id}/input-image`);
    expect(missing.status).toBe(404);
    expect((missing.body as unknown as { code: string }).code).toBe('IMAGE_NOT_FOUND');
  });
});

describe('URL inputs through the fetcher capability', () => {
  it('checks what the fetcher returns by its bytes, not its content type', async () => {
    const png = await solidPng(24, 12, [200, 100, 0]);
    const fetched: string[] = [];
    const fetcher: FetchUserUrl = async (url) => {
      fetched.push(url);
      return { bytes: png, contentType: 'text/html' };
    };
    const { view } = await service(fetcher).submit(LOCAL_USER_ID, {
      prompt: 'from a url',
      kind: 'img2img',
      image: 'https://images.example/cat.png',
    });
    expect(fetched).toEqual(['https://images.example/cat.png']);
    expect(view.task.input_image).toMatchObject({ content_type: 'image/png', width: 24, height: 12 });

    const down: FetchUserUrl = async () => {
      throw new UserUrlFailed('down.example could not be reached (ECONNREFUSED)');
    };
    const error = await service(down)
      .submit(LOCAL_USER_ID, { prompt: 'x', kind: 'img2img', image: 'http://down.example/' })
      .catch((caught: unknown) => caught);
    expect((error as ApiError).code).toBe('INPUT_IMAGE_FETCH_FAILED');
    const refusing: FetchUserUrl = async () => {
      throw new UserUrlRefused('address', 'inside.example is not a public address (private)', '10.1.2.3');
    };
    const refused = await service(refusing)
      .submit(LOCAL_USER_ID, { prompt: 'x', kind: 'img2img', image: 'http://inside.example/' })
      .catch((caught: unknown) => caught);
    expect((refused as ApiError).code).toBe('INPUT_IMAGE_URL_REFUSED');
    expect((refused as ApiError).message).not.toContain('10.1.2.3');
    const html: FetchUserUrl = async () => ({ bytes: Buffer.from('<html></html>'), contentType: 'image/png' });
    const notImage = await service(html)
      .submit(LOCAL_USER_ID, { prompt: 'x', kind: 'img2img', image: 'http://html.example/' })
      .catch((caught: unknown) => caught);
    expect((notImage as ApiError).code).toBe('INPUT_IMAGE_INVALID');
  });
});

describe('models that do not do img2img', () => {
  it('refuses img2img with UNSUPPORTED_KIND before looking at the image', async () => {
    const textOnly = new ProviderRegistry([
      {
        id: 'textonly',
        models: () => [{ id: 'words-v1', kinds: ['txt2img'], maxWidth: 512, maxHeight: 512, maxSteps: 10 }],
        run: async () => [],
      },
    ]);
    const config = loadConfig({ DATABASE_URL: databaseUrl, EASEL_DEFAULT_PROVIDER: 'textonly' });
    const tasks = new TaskService(easel.pool, textOnly, config, NO_HINTS, undefined, {
      pool: easel.pool,
      storage: createLocalStorage(imagesRoot()),
      maxPixels: 1_000_000,
      fetchUserUrl: guardedFetcher,
    });
    const before = await snapshot();
    const error = await tasks
      .submit(LOCAL_USER_ID, { prompt: 'x', kind: 'img2img', image: dataUrl(await solidPng(8, 8, [0, 0, 0])) })
      .catch((caught: unknown) => caught);
    expect((error as ApiError).code).toBe('UNSUPPORTED_KIND');
    expect((error as ApiError).status).toBe(400);
    expect(await snapshot()).toEqual(before);
  });
});

describe('URL inputs over HTTP, through the SSRF guard', () => {
  let images: http.Server;
  let base: string;
  let privateEasel: TestEasel | undefined;
  beforeAll(async () => {
    const red = await solidPng(32, 32, [255, 0, 0]);
    images = http.createServer((request, response) => {
      if (request.url === '/red.png') response.writeHead(200, { 'content-type': 'image/png' }).end(red);
      else response.writeHead(404).end('no such image');
    });
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await privateEasel?.stop();
    await new Promise((resolve) => images.close(resolve));
  });

  it('refuses an image on a loopback address by default, writing nothing, and never asks it', async () => {
    let asked = 0;
    images.on('request', () => asked++);
    const before = await snapshot();
    const answer = await api(easel.url, 'POST', '/v1/tasks', {
      prompt: 'from loopback',
      kind: 'img2img',
      image: `${base}/red.png`,
    });
    expect(answer.status).toBe(400);
    expect((answer.body as unknown as { code: string }).code).toBe('INPUT_IMAGE_URL_REFUSED');
    expect(asked).toBe(0);
    expect(await snapshot()).toEqual(before);
  });

  it('fetches it when EASEL_ALLOW_PRIVATE_URLS=true, and says when a URL cannot be fetched', async () => {
    privateEasel = await startTestEasel(databaseUrl, {
      roles: { api: true, worker: false },
      // Local storage is per data directory: the worker must see the input this API stores.
      env: { EASEL_ALLOW_PRIVATE_URLS: 'true', EASEL_DATA_DIR: easel.config.dataDir },
    });
    const accepted = await api(privateEasel.url, 'POST', '/v1/tasks', {
      prompt: 'from the lan',
      kind: 'img2img',
      image: `${base}/red.png`,
      strength: 0.2,
      width: 64,
      height: 64,
    });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    expect(accepted.body.input_image).toMatchObject({ content_type: 'image/png', width: 32, height: 32 });
    const done = await waitForStatus(easel.url, accepted.body.id, ['succeeded']);
    const [red] = await meanRgb(await bytesOf(done.images[0]!.url));
    expect(red).toBeGreaterThan(200);

    const missing = await api(privateEasel.url, 'POST', '/v1/tasks', {
      prompt: 'gone',
      kind: 'img2img',
      image: `${base}/missing.png`,
    });
    expect(missing.status).toBe(400);
    expect((missing.body as unknown as { code: string }).code).toBe('INPUT_IMAGE_FETCH_FAILED');
  });
});
