import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';

/** Inputs that used to reach PostgreSQL (and answer 500) are refused at the edge, changing nothing. */

let easel: TestEasel;

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase());
});
afterAll(async () => {
  await easel?.stop();
});

interface Problem {
  code: string;
  detail: string;
  errors?: { field: string; pointer: string; in: string; code: string; message: string }[];
}

/** Everything a submit writes: the task, its events and the user's fair-queuing clock. */
async function writtenState() {
  const { rows } = await easel.pool.query(
    `SELECT (SELECT count(*)::int FROM tasks) AS tasks, (SELECT count(*)::int FROM task_events) AS events,
            (SELECT coalesce(json_agg(uc ORDER BY provider, user_id), '[]') FROM user_clocks uc) AS clocks`,
  );
  return rows[0];
}

const valid = { prompt: 'ok', width: 64, height: 64 };
/** Deep JSON as text: JSON.stringify itself would overflow the stack on it. */
const nestedBody = (depth: number) =>
  `{"prompt":"ok","width":64,"height":64,"provider_options":{"a":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}}`;

describe('a refused submit changes nothing', () => {
  // Take a tag once, so "unchanged" compares against a real clock row; let it finish, so its
  // worker's events do not move the counts.
  beforeAll(async () => {
    const first = await api(easel.url, 'POST', '/v1/tasks', valid);
    expect(first.status).toBe(202);
    await waitForStatus(easel.url, first.body.id, ['succeeded']);
  });

  it.each<[string, Record<string, unknown> | (() => string), string, string]>([
    ['NUL in prompt', { ...valid, prompt: 'a\u0000b' }, '/prompt', 'INVALID_CHARACTER'],
    ['lone surrogate in prompt', { ...valid, prompt: 'a\ud800b' }, '/prompt', 'INVALID_CHARACTER'],
    ['NUL in negative_prompt', { ...valid, negative_prompt: '\u0000' }, '/negative_prompt', 'INVALID_CHARACTER'],
    [
      'lone surrogate in negative_prompt',
      { ...valid, negative_prompt: '\udc00' },
      '/negative_prompt',
      'INVALID_CHARACTER',
    ],
    [
      'NUL in a provider_options value',
      { ...valid, provider_options: { fail: 'x\u0000' } },
      '/provider_options/fail',
      'INVALID_CHARACTER',
    ],
    [
      'lone surrogate in a provider_options key',
      { ...valid, provider_options: { ['k\ud800']: 1 } },
      '/provider_options/k\ud800',
      'INVALID_CHARACTER',
    ],
    // A function, so that vitest does not print the body when it names the test.
    ['provider_options nested 100000 deep', () => nestedBody(100_000), '/provider_options', 'TOO_DEEP'],
    [
      'provider_options of 9 KiB',
      { ...valid, provider_options: { fail: 'x'.repeat(9 * 1024) } },
      '/provider_options',
      'TOO_LARGE',
    ],
    [
      'an unknown option',
      { ...valid, provider_options: { colour: 'red' } },
      '/provider_options/colour',
      'UNKNOWN_FIELD',
    ],
    [
      'an option out of range',
      { ...valid, provider_options: { delay_ms: -1 } },
      '/provider_options/delay_ms',
      'TOO_SMALL',
    ],
    [
      'an option of the wrong type',
      { ...valid, provider_options: { delay_ms: '5' } },
      '/provider_options/delay_ms',
      'WRONG_TYPE',
    ],
    [
      'a bad enum option',
      { ...valid, provider_options: { fail: 'sometimes' } },
      '/provider_options/fail',
      'NOT_ALLOWED',
    ],
    [
      'fail_attempts without fail',
      { ...valid, provider_options: { fail_attempts: 2 } },
      '/provider_options/fail',
      'REQUIRED',
    ],
    [
      'retry_after_ms without a rate limit',
      { ...valid, provider_options: { fail: 'retryable', retry_after_ms: 5 } },
      '/provider_options/fail',
      'NOT_ALLOWED',
    ],
  ])('%s → 400 naming %s (%s)', async (_name, body, pointer, rule) => {
    const before = await writtenState();
    const response = await api<Problem>(easel.url, 'POST', '/v1/tasks', typeof body === 'function' ? body() : body, {
      'content-type': 'application/json',
    });
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.body.code).toBe('VALIDATION_FAILED');
    expect(response.body.errors).toContainEqual(expect.objectContaining({ pointer, code: rule }));
    expect(await writtenState()).toEqual(before);
  });

  it('accepts the options the sketch model declares', async () => {
    const response = await api(easel.url, 'POST', '/v1/tasks', {
      ...valid,
      provider_options: { delay_ms: 0, fail: 'rate_limited', fail_attempts: 1, retry_after_ms: 10 },
    });
    expect(response.status).toBe(202);
    await waitForStatus(easel.url, response.body.id, ['succeeded']);
  });
});

describe('ids, cursors and filters are checked before they reach the database', () => {
  const urn = 'urn:uuid:0190a0a0-0000-7000-8000-000000000000';
  it.each([
    ['GET', `/v1/tasks/${urn}`],
    ['POST', `/v1/tasks/${urn}/cancel`],
    ['POST', `/v1/tasks/${urn}/retry`],
    ['GET', `/v1/tasks/${urn}/images/0`],
    ['GET', '/v1/tasks/0190a0a00000700080000000000000000'],
    ['GET', '/v1/tasks/{0190a0a0-0000-7000-8000-000000000000}'],
  ])('%s %s → 400 naming id', async (method, route) => {
    const response = await api<Problem>(easel.url, method, route);
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    expect(response.body.errors).toContainEqual(expect.objectContaining({ field: 'id', pointer: '/id' }));
  });

  it('a cursor of 36 dashes → 400 INVALID_CURSOR naming cursor', async () => {
    const response = await api<Problem>(easel.url, 'GET', `/v1/tasks?cursor=${'-'.repeat(36)}`);
    expect(response.status).toBe(400);
    expect(response.body.code).toBe('INVALID_CURSOR');
    expect(response.body.errors).toContainEqual(expect.objectContaining({ field: 'cursor', pointer: '/cursor' }));
  });

  it.each(['%00', 'a%00b'])('?provider=%s → 400 naming provider', async (value) => {
    const response = await api<Problem>(easel.url, 'GET', `/v1/tasks?provider=${value}`);
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    expect(response.body.errors).toContainEqual(expect.objectContaining({ field: 'provider', pointer: '/provider' }));
  });
});

describe('validation errors', () => {
  it('reports every bad field with its pointer, a rule code and a plain message', async () => {
    const response = await api<Problem>(easel.url, 'POST', '/v1/tasks', {
      prompt: '   ',
      width: 100,
      height: 32,
      steps: '20',
      colour: 'red',
    });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual(
      expect.arrayContaining([
        {
          field: 'prompt',
          pointer: '/prompt',
          in: 'body',
          code: 'BAD_FORMAT',
          message: 'prompt must contain a visible character',
        },
        {
          field: 'width',
          pointer: '/width',
          in: 'body',
          code: 'NOT_MULTIPLE',
          message: 'width must be a multiple of 8',
        },
        { field: 'height', pointer: '/height', in: 'body', code: 'TOO_SMALL', message: 'height must be at least 64' },
        { field: 'steps', pointer: '/steps', in: 'body', code: 'WRONG_TYPE', message: 'steps must be an integer' },
        {
          field: 'colour',
          pointer: '/colour',
          in: 'body',
          code: 'UNKNOWN_FIELD',
          message: 'colour is not a known field',
        },
      ]),
    );
    expect(response.body.errors).toHaveLength(5);
  });

  it('says a union once, listing what is allowed', async () => {
    const response = await api<Problem>(easel.url, 'GET', '/v1/tasks?status=sleeping');
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([
      {
        field: 'status',
        pointer: '/status',
        in: 'query',
        code: 'NOT_ALLOWED',
        message: 'status must be one of queued, running, succeeded, failed, canceled',
      },
    ]);
  });

  it('names a missing field by its own pointer', async () => {
    const response = await api<Problem>(easel.url, 'POST', '/v1/tasks', { width: 64 });
    expect(response.body.errors).toEqual([
      { field: 'prompt', pointer: '/prompt', in: 'body', code: 'REQUIRED', message: 'prompt is required' },
    ]);
  });
});
