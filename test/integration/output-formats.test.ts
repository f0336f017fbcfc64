import { createHash } from 'node:crypto';
import { mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResource } from '../../src/api/schemas/task.js';
import { readPngText } from '../../src/images/png-chunks.js';
import { createLocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/storage.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { openSse } from '../helpers/sse.js';

/** What the first bytes say the file is, independent of sharp and of any header. */
function sniff(data: Buffer): string {
  if (data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg';
  if (data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return 'unknown';
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Problem {
  code: string;
  errors?: Array<{ pointer: string; code: string }>;
}

async function download(base: string, url: string, headers: Record<string, string> = {}) {
  const response = await fetch(new URL(url, base), { headers });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    etag: response.headers.get('etag'),
    bytes: Buffer.from(await response.arrayBuffer()),
  };
}

async function submitAndWait(easel: TestEasel, body: Record<string, unknown>): Promise<TaskResource> {
  const submitted = await api(easel.url, 'POST', '/v1/tasks', { width: 320, height: 192, steps: 2, ...body });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
  return waitForStatus(easel.url, submitted.body.id, ['succeeded', 'failed']);
}

describe('output formats with the default config', () => {
  let easel: TestEasel;
  beforeAll(async () => {
    easel = await startTestEasel(await createTestDatabase());
  });
  afterAll(async () => {
    await easel?.stop();
  });

  const taskCount = async () => Number((await easel.pool.query('SELECT count(*) FROM tasks')).rows[0].count);

  it('stores WebP when asked, served with its type, and a WebP thumbnail', async () => {
    const task = await submitAndWait(easel, { prompt: 'a webp fox', output_format: 'webp', output_quality: 60, n: 2 });
    expect(task.status).toBe('succeeded');
    expect(task.params).toMatchObject({ output_format: 'webp', output_quality: 60 });
    expect(task.images).toHaveLength(2);
    for (const image of task.images) {
      expect(image.content_type).toBe('image/webp');
      const got = await download(easel.url, image.url);
      expect(got.status).toBe(200);
      expect(got.type).toBe('image/webp');
      expect(sniff(got.bytes)).toBe('webp');
      // The recorded facts describe the stored (converted) bytes.
      expect(sha256(got.bytes)).toBe(image.sha256);
      expect(got.bytes.length).toBe(image.bytes);
      expect(await sharp(got.bytes).metadata()).toMatchObject({ format: 'webp', width: 320, height: 192 });

      expect(image.thumbnail_url).toBe(`${image.url}/thumbnail`);
      const thumbnail = await download(easel.url, image.thumbnail_url!);
      expect(thumbnail.status).toBe(200);
      expect(thumbnail.type).toBe('image/webp');
      expect(sniff(thumbnail.bytes)).toBe('webp');
      expect(await sharp(thumbnail.bytes).metadata()).toMatchObject({ width: 256, height: 154 });
      expect(thumbnail.etag).toBe(`"${sha256(thumbnail.bytes)}"`);
      const again = await download(easel.url, image.thumbnail_url!, { 'if-none-match': thumbnail.etag! });
      expect(again.status).toBe(304);
    }
    // Live clients get the same links from the success event, with no second request.
    const stream = await openSse(`${easel.url}/v1/events?task_id=${task.id}`);
    await stream.ended;
    const succeeded = stream.updates().find((update) => update.type === 'task:succeeded');
    expect(succeeded?.images).toEqual(task.images);
    const { rows } = await easel.pool.query(
      'SELECT storage_key, thumbnail_bytes, thumbnail_width, thumbnail_height FROM task_images WHERE task_id = $1 ORDER BY index',
      [task.id],
    );
    expect(rows[0]).toMatchObject({ thumbnail_width: 256, thumbnail_height: 154 });
    // The retention engineer's contract: the thumbnail sits under the image key plus `.thumb.webp`.
    const files = await readdir(path.join(easel.config.dataDir, 'images'), { recursive: true });
    for (const row of rows as Array<{ storage_key: string }>) {
      expect(files).toContain(row.storage_key);
      expect(files).toContain(`${row.storage_key}.thumb.webp`);
    }
  });

  it('stores JPEG from a multipart submit, and keeps PNG when no format is asked for', async () => {
    const form = new FormData();
    for (const [name, value] of Object.entries({
      prompt: 'a jpeg fox',
      output_format: 'jpeg',
      output_quality: '50',
      width: '128',
      height: '128',
    })) {
      form.append(name, value);
    }
    const response = await fetch(`${easel.url}/v1/tasks`, { method: 'POST', body: form });
    const submitted = (await response.json()) as TaskResource;
    expect(response.status, JSON.stringify(submitted)).toBe(202);
    expect(submitted.params).toMatchObject({ output_format: 'jpeg', output_quality: 50 });
    const jpeg = await waitForStatus(easel.url, submitted.id, ['succeeded', 'failed']);
    const got = await download(easel.url, jpeg.images[0]!.url);
    expect([got.type, sniff(got.bytes)]).toEqual(['image/jpeg', 'jpeg']);
    expect(jpeg.images[0]!.url).toMatch(/\/images\/0$/);

    const plain = await submitAndWait(easel, { prompt: 'a plain fox' });
    expect(plain.params).not.toHaveProperty('output_format');
    expect(plain.params).not.toHaveProperty('output_quality');
    const png = await download(easel.url, plain.images[0]!.url);
    expect([png.type, sniff(png.bytes)]).toEqual(['image/png', 'png']);
    // Without EASEL_EMBED_METADATA, nothing of the prompt travels with the file.
    expect(readPngText(png.bytes)).toEqual({});
    expect(png.bytes.includes('plain fox')).toBe(false);
    const thumbnail = await download(easel.url, plain.images[0]!.thumbnail_url!);
    expect([thumbnail.type, sniff(thumbnail.bytes)]).toEqual(['image/webp', 'webp']);
  });

  it.each([
    [{ output_format: 'gif' }, '/output_format', 'NOT_ALLOWED'],
    [{ output_format: 'jpeg', output_quality: 0 }, '/output_quality', 'TOO_SMALL'],
    [{ output_format: 'webp', output_quality: 101 }, '/output_quality', 'TOO_LARGE'],
    [{ output_format: 'webp', output_quality: 'high' }, '/output_quality', 'WRONG_TYPE'],
    [{ output_format: 'jpeg', output_quality: 50.5 }, '/output_quality', 'WRONG_TYPE'],
    [{ output_quality: 80 }, '/output_quality', 'NOT_ALLOWED'],
    [{ output_format: 'png', output_quality: 80 }, '/output_quality', 'NOT_ALLOWED'],
  ])('refuses %j with a 400 naming the field, and queues nothing', async (fields, pointer, code) => {
    const before = await taskCount();
    const answer = await api<Problem>(easel.url, 'POST', '/v1/tasks', { prompt: 'refused', ...fields });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(answer.body.code).toBe('VALIDATION_FAILED');
    expect(answer.body.errors).toContainEqual(expect.objectContaining({ pointer, code }));
    expect(await taskCount()).toBe(before);
  });

  it('answers 404 for a thumbnail that does not exist, and null thumbnail_url for an image without one', async () => {
    const task = await submitAndWait(easel, { prompt: 'an old fox' });
    const missing = await api<Problem>(easel.url, 'GET', `/v1/tasks/${task.id}/images/5/thumbnail`);
    expect([missing.status, missing.body.code]).toEqual([404, 'IMAGE_NOT_FOUND']);
    // As an image recorded before migration 0015 looks.
    await easel.pool.query(
      `UPDATE task_images SET thumbnail_bytes = NULL, thumbnail_width = NULL, thumbnail_height = NULL,
                              thumbnail_sha256 = NULL WHERE task_id = $1`,
      [task.id],
    );
    const old = await api(easel.url, 'GET', `/v1/tasks/${task.id}`);
    expect(old.body.images[0]!.thumbnail_url).toBeNull();
    const gone = await api<Problem>(easel.url, 'GET', `/v1/tasks/${task.id}/images/0/thumbnail`);
    expect([gone.status, gone.body.code]).toEqual([404, 'IMAGE_NOT_FOUND']);
  });
});

describe('output settings from the config', () => {
  let easel: TestEasel;
  beforeAll(async () => {
    easel = await startTestEasel(await createTestDatabase(), {
      env: { EASEL_OUTPUT_FORMAT: 'jpeg', EASEL_OUTPUT_QUALITY: '70', EASEL_EMBED_METADATA: 'true' },
    });
  });
  afterAll(async () => {
    await easel?.stop();
  });

  it('applies EASEL_OUTPUT_FORMAT and EASEL_OUTPUT_QUALITY to tasks that name no format', async () => {
    const task = await submitAndWait(easel, { prompt: 'a default fox' });
    expect(task.params).toMatchObject({ output_format: 'jpeg', output_quality: 70 });
    const got = await download(easel.url, task.images[0]!.url);
    expect([got.type, sniff(got.bytes)]).toEqual(['image/jpeg', 'jpeg']);
  });

  it('embeds the generation parameters in PNG output when EASEL_EMBED_METADATA is on', async () => {
    const task = await submitAndWait(easel, { prompt: 'a labelled fox, 狐', output_format: 'png', seed: 77, steps: 3 });
    expect(task.params).toMatchObject({ output_format: 'png' });
    expect(task.params).not.toHaveProperty('output_quality');
    const got = await download(easel.url, task.images[0]!.url);
    expect(sniff(got.bytes)).toBe('png');
    expect(readPngText(got.bytes)).toMatchObject({
      prompt: 'a labelled fox, 狐',
      seed: '77',
      provider: 'sketch',
      model: task.model,
      steps: '3',
    });
    expect(sha256(got.bytes)).toBe(task.images[0]!.sha256);
  });
});

describe('a thumbnail that fails to store', () => {
  let easel: TestEasel;
  let root: string;
  let failThumbnails = 1;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'easel-thumb-fault-'));
    const local = createLocalStorage(root);
    // The first thumbnail put fails, as a bucket that went away would.
    const storage: Storage = {
      ...local,
      driver: local.driver,
      put: async (key, data, contentType) => {
        if (key.endsWith('.thumb.webp') && failThumbnails-- > 0) throw new Error('storage unavailable');
        return local.put(key, data, contentType);
      },
    };
    easel = await startTestEasel(await createTestDatabase(), { storage });
  });
  afterAll(async () => {
    await easel?.stop();
  });

  it('fails the attempt retryably, records nothing from it and leaves no file behind', async () => {
    const task = await submitAndWait(easel, { prompt: 'a retried fox', output_format: 'webp' });
    expect(task.status).toBe('succeeded');
    expect(task.attempt).toBe(2);
    const { rows } = await easel.pool.query('SELECT storage_key FROM task_images WHERE task_id = $1', [task.id]);
    const key = (rows as Array<{ storage_key: string }>)[0]!.storage_key;
    // Only the winning attempt's image and thumbnail exist; the first attempt's image was deleted.
    const files = (await readdir(root, { recursive: true })).filter((name) => name.includes(task.id));
    expect(files.sort()).toEqual([key, `${key}.thumb.webp`].sort());
    const thumbnail = await download(easel.url, task.images[0]!.thumbnail_url!);
    expect(sniff(thumbnail.bytes)).toBe('webp');
  });
});
