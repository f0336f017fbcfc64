import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { getCredential, insertCredential } from '../../src/credentials/store.js';
import { CredentialError, QuotaExceededError, RateLimitedError, RetryableError } from '../../src/providers/errors.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { createSketchProvider } from '../../src/providers/sketch/index.js';
import type { Provider, RunContext } from '../../src/providers/types.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { eventually } from '../helpers/processes.js';

const KEY = 'b'.repeat(64);
const box = new SecretBox(Buffer.from(KEY, 'hex'));
const sketch = createSketchProvider();

/**
 * Sketch behind a credential pool; what it does depends on the credential it was given, the
 * way a hosted provider answers differently per token.
 */
const seen: Array<{ label: string; secret: string }> = [];
const pooled: Provider = {
  id: 'pooled',
  credentialPool: 'pooled',
  models: () => sketch.models(),
  run: async (input, ctx: RunContext) => {
    const credential = ctx.credential!;
    seen.push({ label: credential.label, secret: credential.secret });
    if (credential.label.startsWith('throttled')) throw new RateLimitedError('slow down', 30_000);
    if (credential.label.startsWith('broke')) throw new QuotaExceededError('monthly credits used up');
    if (credential.label.startsWith('revoked'))
      throw new CredentialError('PROVIDER_CREDENTIAL_REJECTED', 'invalid token');
    if (credential.label.startsWith('echo')) {
      throw new RetryableError('PROVIDER_UNAVAILABLE', `upstream said: bad header Bearer ${credential.secret}`);
    }
    return sketch.run(input, ctx);
  },
};

let easel: TestEasel;
beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), {
    registry: new ProviderRegistry([sketch, pooled]),
    env: { EASEL_SECRET_KEY: KEY, EASEL_MAX_ATTEMPTS: '2' },
  });
});
afterAll(async () => {
  await easel?.stop();
});

const add = async (label: string) => {
  const result = await insertCredential(easel.pool, box, {
    provider: 'pooled',
    label,
    secret: `tok-${label}-0123456789`,
  });
  if (!result.inserted) throw new Error('duplicate');
  return result.row.id;
};
const submit = async () =>
  (await api(easel.url, 'POST', '/v1/tasks', { provider: 'pooled', prompt: 'a boat', width: 64, height: 64, steps: 2 }))
    .body;
const clearPool = () => easel.pool.query(`DELETE FROM credentials WHERE provider = 'pooled'`);

describe('what an attempt’s failure does to its credential', () => {
  it.each([
    ['throttled', 'PROVIDER_RATE_LIMITED', 'cooling_down'],
    ['broke', 'PROVIDER_QUOTA_EXCEEDED', 'cooling_down'],
    ['revoked', 'PROVIDER_CREDENTIAL_REJECTED', 'disabled'],
  ])(
    '%s: the credential is taken out of service and the task waits uncounted, then runs on another credential',
    async (label, code, state) => {
      await clearPool();
      const bad = await add(`${label}-1`);
      const task = await submit();
      // The credential is written first, then the task goes back: wait for both.
      await eventually(
        `credential ${label} ${state} and the task queued`,
        async () =>
          (await getCredential(easel.pool, bad))!.state === state &&
          (await api(easel.url, 'GET', `/v1/tasks/${task.id}`)).body.status === 'queued',
        10_000,
      );
      const waiting = (await api(easel.url, 'GET', `/v1/tasks/${task.id}`)).body;
      expect(waiting).toMatchObject({ status: 'queued', attempt: 0, error: { code } });
      const row = (await getCredential(easel.pool, bad))!;
      expect(row.last_error_code).toBe(code);
      if (label === 'throttled') {
        // Retry-After 30 s from the adapter, not the default.
        expect(row.cooldown_until!.getTime() - Date.now()).toBeGreaterThan(20_000);
      }
      if (label === 'broke') expect(row.cooldown_until!.getTime()).toBe(row.next_reset_at.getTime());
      if (label === 'revoked') expect(row.disabled_reason).toBe('invalid token');

      const good = await add(`good-${label}`);
      const done = await waitForStatus(easel.url, task.id, ['succeeded', 'failed']);
      expect(done).toMatchObject({ status: 'succeeded', attempt: 1 });
      const { rows } = await easel.pool.query('SELECT credential_id FROM tasks WHERE id = $1', [task.id]);
      expect(rows[0].credential_id).toBe(good);
    },
  );

  it('cuts the secret out of a provider message before it reaches the task', async () => {
    await clearPool();
    await add('echo');
    const task = await submit();
    const done = await waitForStatus(easel.url, task.id, ['failed']);
    expect(done.error!.message).toBe('upstream said: bad header Bearer [redacted]');
    expect(JSON.stringify(done)).not.toContain('tok-echo');
    // An ordinary failure counts attempts and leaves the credential in service, noting the error.
    expect(done.attempt).toBe(2);
    const [credential] = (await easel.pool.query(`SELECT * FROM credentials WHERE provider = 'pooled'`)).rows;
    expect(credential).toMatchObject({
      disabled_reason: null,
      cooldown_until: null,
      last_error_code: 'PROVIDER_UNAVAILABLE',
    });
  });
});
