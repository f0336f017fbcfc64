import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { startHuggingFaceFake, type HuggingFaceFake } from '../fakes/huggingface.js';

/**
 * A storm of 429s across a pool of three Hugging Face tokens, through a real Easel and the fake
 * router: no task fails while a token can serve, a throttled token serves again once its
 * Retry-After has passed, and no token ever runs more requests at once than its concurrency.
 */
const TOKENS = ['hf_storm_a_0123456789', 'hf_storm_b_0123456789', 'hf_storm_c_0123456789'];
const CONCURRENCY = 2;
const TASKS = 24;

let fake: HuggingFaceFake;
let easel: TestEasel;

beforeAll(async () => {
  fake = await startHuggingFaceFake({ tokens: TOKENS });
  // Slow enough that tasks overlap and per-token concurrency is really tested.
  fake.slow(120);
  easel = await startTestEasel(await createTestDatabase(), {
    env: {
      HF_BASE_URL: fake.url,
      HUGGING_FACE_TOKENS: TOKENS.join(','),
      EASEL_SECRET_KEY: 'c'.repeat(64),
      EASEL_WORKER_CONCURRENCY: '16',
      EASEL_MAX_ATTEMPTS: '2',
    },
  });
  await easel.pool.query(`UPDATE credentials SET concurrency = $1 WHERE provider = 'huggingface'`, [CONCURRENCY]);
});
afterAll(async () => {
  await easel?.stop();
  await fake?.close();
});

describe('a storm of 429s across three credentials', () => {
  it('fails no task, brings every token back after its Retry-After, and never exceeds a token’s concurrency', async () => {
    // Every token is throttled for its first requests, each 429 naming a 1 s Retry-After.
    for (const token of TOKENS) fake.throttle(token, 3, 1);
    const submitted = await Promise.all(
      Array.from({ length: TASKS }, async (_, i) => {
        const { status, body } = await api(easel.url, 'POST', '/v1/tasks', {
          provider: 'huggingface',
          prompt: `storm ${i}`,
          width: 64,
          height: 64,
          steps: 1,
        });
        expect(status).toBe(202);
        return body.id;
      }),
    );
    const finished = await Promise.all(
      submitted.map((id) => waitForStatus(easel.url, id, ['succeeded', 'failed', 'canceled'], 60_000)),
    );
    expect(finished.map((task) => task.status)).toEqual(Array(TASKS).fill('succeeded'));
    // A 429 is the token's fault, not the task's: no attempt was spent on one.
    expect(finished.every((task) => task.attempt === 1)).toBe(true);

    for (const token of TOKENS) {
      const mine = fake.answers.filter((answer) => answer.token === token).map((answer) => answer.status);
      // Throttled three times, then served again once the cooldown ended.
      expect(mine.filter((status) => status === 429)).toHaveLength(3);
      expect(mine.lastIndexOf(429)).toBeLessThan(mine.lastIndexOf(200));
      expect(fake.maxInFlight.get(token)).toBeLessThanOrEqual(CONCURRENCY);
    }
    expect(fake.answers.filter((answer) => answer.status === 200)).toHaveLength(TASKS);

    // The pool shows the storm: every token was cooled down with the fake's error on record.
    const { body } = await api<{ data: Array<{ last_error: { code: string } | null }> }>(
      easel.url,
      'GET',
      '/v1/admin/credentials?provider=huggingface',
    );
    expect(body.data.map((credential) => credential.last_error?.code)).toEqual(Array(3).fill('PROVIDER_RATE_LIMITED'));
  });
});
