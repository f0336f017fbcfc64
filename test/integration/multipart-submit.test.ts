import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResource } from '../../src/api/schemas/task.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { solidPng } from '../helpers/images.js';

/** POST /v1/tasks as multipart/form-data: the JSON fields as form fields, the input as the file `image`. */

const UPLOAD_MAX_BYTES = 100_000;
let easel: TestEasel;

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), {
    env: { EASEL_UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES) },
  });
});
afterAll(async () => {
  await easel?.stop();
});

interface Problem {
  code: string;
  errors?: Array<{ field: string; code: string }>;
}

type Part = string | { bytes: Buffer; filename?: string; type?: string };

async function submitForm<T = TaskResource>(parts: Array<[string, Part]>) {
  const form = new FormData();
  for (const [name, value] of parts) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, new Blob([value.bytes], { type: value.type ?? 'image/png' }), value.filename ?? 'in.png');
  }
  const response = await fetch(`${easel.url}/v1/tasks`, { method: 'POST', body: form });
  return { status: response.status, type: response.headers.get('content-type'), body: (await response.json()) as T };
}

const count = async (table: string) => Number((await easel.pool.query(`SELECT count(*) FROM ${table}`)).rows[0].count);
async function storedFiles(): Promise<number> {
  try {
    return (await readdir(path.join(easel.config.dataDir, 'images'), { recursive: true })).length;
  } catch {
    return 0;
  }
}
const snapshot = async () => ({
  tasks: await count('tasks'),
  uploads: await count('uploads'),
  files: await storedFiles(),
});

describe('POST /v1/tasks with multipart/form-data', () => {
  it('queues an img2img task from a file, with numbers and provider_options parsed', async () => {
    const png = await solidPng(96, 64, [200, 40, 40]);
    const { status, body } = await submitForm([
      ['prompt', 'a red field'],
      ['kind', 'img2img'],
      ['provider', 'sketch'],
      ['width', '128'],
      ['height', '128'],
      ['steps', '12'],
      ['strength', '0.4'],
      ['seed', '77'],
      ['provider_options', '{"delay_ms": 10}'],
      ['image', { bytes: png }],
    ]);
    expect(status, JSON.stringify(body)).toBe(202);
    expect(body).toMatchObject({
      kind: 'img2img',
      provider: 'sketch',
      params: { prompt: 'a red field', width: 128, height: 128, steps: 12, seed: 77, strength: 0.4 },
      provider_options: { delay_ms: 10 },
      input_image: { content_type: 'image/png', width: 96, height: 64 },
    });
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed']);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const input = await fetch(body.input_image!.url);
    expect(input.status).toBe(200);
  });

  it('takes a txt2img form without a file, and image as text like JSON', async () => {
    const plain = await submitForm([
      ['prompt', 'form only'],
      ['n', '2'],
      ['guidance', '6.5'],
    ]);
    expect(plain.status, JSON.stringify(plain.body)).toBe(202);
    expect(plain.body.params).toMatchObject({ n: 2, guidance: 6.5 });

    const png = await solidPng(32, 32, [0, 0, 255]);
    const asText = await submitForm([
      ['prompt', 'data url as a field'],
      ['kind', 'img2img'],
      ['image', `data:image/png;base64,${png.toString('base64')}`],
    ]);
    expect(asText.status, JSON.stringify(asText.body)).toBe(202);
    expect(asText.body.input_image).toMatchObject({ width: 32, height: 32 });
    // Finished, so that their images are stored before the next test counts files.
    for (const id of [plain.body.id, asText.body.id]) await waitForStatus(easel.url, id, ['succeeded']);
  });

  it('refuses bad parts with 400 naming the field, and writes nothing', async () => {
    const png = await solidPng(16, 16, [1, 2, 3]);
    const cases: Array<[string, Array<[string, Part]>, string, string | undefined]> = [
      [
        'a number that is not one',
        [
          ['prompt', 'x'],
          ['width', 'wide'],
        ],
        'VALIDATION_FAILED',
        'width',
      ],
      [
        'provider_options that is not JSON',
        [
          ['prompt', 'x'],
          ['provider_options', '{'],
        ],
        'VALIDATION_FAILED',
        'provider_options',
      ],
      [
        'provider_options that is not an object',
        [
          ['prompt', 'x'],
          ['provider_options', '[1]'],
        ],
        'VALIDATION_FAILED',
        'provider_options',
      ],
      [
        'an unknown field',
        [
          ['prompt', 'x'],
          ['colour', 'red'],
        ],
        'VALIDATION_FAILED',
        'colour',
      ],
      [
        'a field twice',
        [
          ['prompt', 'x'],
          ['prompt', 'y'],
        ],
        'VALIDATION_FAILED',
        'prompt',
      ],
      [
        'a file in another field',
        [
          ['prompt', 'x'],
          ['kind', 'img2img'],
          ['mask', { bytes: png }],
        ],
        'VALIDATION_FAILED',
        'mask',
      ],
      [
        'two image files',
        [
          ['prompt', 'x'],
          ['kind', 'img2img'],
          ['image', { bytes: png }],
          ['image', { bytes: png }],
        ],
        'VALIDATION_FAILED',
        'image',
      ],
      [
        'an image without img2img',
        [
          ['prompt', 'x'],
          ['image', { bytes: png }],
        ],
        'VALIDATION_FAILED',
        'image',
      ],
      ['no prompt', [['width', '64']], 'VALIDATION_FAILED', 'prompt'],
      [
        'a file that is no image',
        [
          ['prompt', 'x'],
          ['kind', 'img2img'],
          ['image', { bytes: Buffer.from('hello, not a png') }],
        ],
        'INPUT_IMAGE_INVALID',
        undefined,
      ],
    ];
    const before = await snapshot();
    for (const [name, parts, code, field] of cases) {
      const { status, type, body } = await submitForm<Problem>(parts);
      expect(status, `${name}: ${JSON.stringify(body)}`).toBe(400);
      expect(type, name).toContain('application/problem+json');
      expect(body.code, name).toBe(code);
      if (field)
        expect(
          body.errors?.map((error) => error.field),
          name,
        ).toContain(field);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a file over EASEL_UPLOAD_MAX_BYTES with 413, and writes nothing', async () => {
    const before = await snapshot();
    const big = Buffer.alloc(UPLOAD_MAX_BYTES + 1000, 7);
    const { status, body } = await submitForm<Problem>([
      ['prompt', 'too big'],
      ['kind', 'img2img'],
      ['image', { bytes: big }],
    ]);
    expect(status, JSON.stringify(body)).toBe(413);
    expect(body.code).toBe('BODY_TOO_LARGE');
    expect(await snapshot()).toEqual(before);
  });

  it('still answers 415 for a body that is neither JSON nor a form', async () => {
    const response = await api<Problem>(easel.url, 'POST', '/v1/tasks', 'prompt=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(response.status).toBe(415);
    expect(response.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
