import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { getCredential, insertCredential, recordCredentialOutcome } from '../../src/credentials/store.js';
import { createPool, type Pool } from '../../src/db/pool.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { succeedAttempt } from '../../src/tasks/attempt.js';
import { claimTasks } from '../../src/tasks/claim.js';
import type { TaskRow } from '../../src/tasks/rows.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { addWorker, enqueueTask } from '../helpers/queue.js';

/** Claim-time credential selection (migration 0007), through the SQL alone. */
describe('claiming with a credential pool', () => {
  const box = new SecretBox(Buffer.alloc(32, 7));
  const workerId = randomUUID();
  let pool: Pool;
  let userId: string;
  let secretCount = 0;

  beforeAll(async () => {
    pool = createPool(await createTestDatabase(), { max: 8 });
    userId = await createUser(pool, 'pool-claims');
    await addWorker(pool, workerId);
  });
  afterAll(async () => {
    await pool?.end();
  });

  const addCredential = async (
    provider: string,
    label: string,
    limits: { concurrency?: number; dailyLimit?: number } = {},
  ) => {
    const result = await insertCredential(pool, box, {
      provider,
      label,
      secret: `secret-${label}-${++secretCount}-xyz`,
      ...limits,
    });
    if (!result.inserted) throw new Error('not inserted');
    return result.row.id;
  };
  const claim = (provider: string, want: number, providerLimit = 100) =>
    claimTasks(pool, NO_HINTS, {
      provider,
      workerId,
      want,
      providerLimit,
      deadAfterMs: 30_000,
      credentialPool: provider,
    });
  const enqueue = async (provider: string, count: number) => {
    for (let i = 0; i < count; i++) await enqueueTask(pool, { userId, provider, prompt: `p${i}` });
  };
  const finish = (task: TaskRow) =>
    succeedAttempt(
      pool,
      NO_HINTS,
      { taskId: task.id, token: task.lease_token!, provider: task.provider },
      {
        predictTimeSeconds: 0.1,
        images: [],
      },
    );
  const byCredential = (tasks: TaskRow[]) =>
    tasks.reduce<Record<string, number>>((counts, task) => {
      counts[task.credential_id!] = (counts[task.credential_id!] ?? 0) + 1;
      return counts;
    }, {});

  it('claims nothing while the pool has no credential, and the tasks stay queued', async () => {
    await enqueue('empty', 3);
    expect(await claim('empty', 5)).toEqual([]);
    const { rows } = await pool.query(`SELECT status FROM tasks WHERE provider = 'empty'`);
    expect(rows.map((row) => row.status)).toEqual(['queued', 'queued', 'queued']);
  });

  it('deals tasks round-robin, least recently used first, and never past a credential’s concurrency', async () => {
    const a = await addCredential('rr', 'a', { concurrency: 2 });
    const b = await addCredential('rr', 'b', { concurrency: 1 });
    const c = await addCredential('rr', 'c', { concurrency: 3 });
    await enqueue('rr', 10);
    const first = await claim('rr', 3);
    // One each first: every credential is unused, so each gets slot 1 before any gets slot 2.
    expect(byCredential(first)).toEqual({ [a]: 1, [b]: 1, [c]: 1 });
    const second = await claim('rr', 10);
    // Free slots left: a 1, b 0, c 2; the pool's capacity (6) bounds the claim.
    expect(byCredential(second)).toEqual({ [a]: 1, [c]: 2 });
    expect(await claim('rr', 10)).toEqual([]);
    // A finished task frees its credential's slot, and only that one.
    await finish(first.find((task) => task.credential_id === b)!);
    const third = await claim('rr', 10);
    expect(byCredential(third)).toEqual({ [b]: 1 });
  });

  it('caps the claim by the provider limit as well as by the credentials', async () => {
    await addCredential('capped', 'big', { concurrency: 50 });
    await enqueue('capped', 10);
    expect(await claim('capped', 10, 4)).toHaveLength(4);
  });

  it('skips disabled, cooling and exhausted credentials, and counts daily use at claim', async () => {
    const disabled = await addCredential('mixed', 'disabled', { concurrency: 5 });
    const cooling = await addCredential('mixed', 'cooling', { concurrency: 5 });
    const limited = await addCredential('mixed', 'limited', { concurrency: 5, dailyLimit: 2 });
    await recordCredentialOutcome(pool, disabled, {
      kind: 'disable',
      code: 'PROVIDER_CREDENTIAL_REJECTED',
      reason: 'revoked',
    });
    await recordCredentialOutcome(pool, cooling, { kind: 'cool_down', code: 'PROVIDER_RATE_LIMITED', ms: 60_000 });
    await enqueue('mixed', 6);
    const claimed = await claim('mixed', 6);
    expect(byCredential(claimed)).toEqual({ [limited]: 2 });
    expect((await getCredential(pool, limited))!).toMatchObject({ used_today: 2, state: 'exhausted' });
    expect(await claim('mixed', 6)).toEqual([]);
    // The cooldown ends: that credential serves again.
    await pool.query(`UPDATE credentials SET cooldown_until = now() - interval '1 second' WHERE id = $1`, [cooling]);
    expect(byCredential(await claim('mixed', 6))).toEqual({ [cooling]: 4 });
  });

  it('a quota answer without a time rests the credential until its next daily reset', async () => {
    const id = await addCredential('quota', 'q');
    await recordCredentialOutcome(pool, id, { kind: 'cool_down', code: 'PROVIDER_QUOTA_EXCEEDED', ms: undefined });
    const row = (await getCredential(pool, id))!;
    expect(row.state).toBe('cooling_down');
    expect(row.cooldown_until!.getTime()).toBe(row.next_reset_at.getTime());
    expect(row.last_error_code).toBe('PROVIDER_QUOTA_EXCEEDED');
  });

  it('a shorter cooldown never cuts a longer one short, and an admin’s disable reason is kept', async () => {
    const id = await addCredential('keep', 'k');
    await recordCredentialOutcome(pool, id, { kind: 'cool_down', code: 'PROVIDER_RATE_LIMITED', ms: 600_000 });
    const long = (await getCredential(pool, id))!.cooldown_until!.getTime();
    await recordCredentialOutcome(pool, id, { kind: 'cool_down', code: 'PROVIDER_RATE_LIMITED', ms: 1_000 });
    expect((await getCredential(pool, id))!.cooldown_until!.getTime()).toBe(long);
    await pool.query(`UPDATE credentials SET disabled_reason = 'rotated by admin' WHERE id = $1`, [id]);
    await recordCredentialOutcome(pool, id, { kind: 'disable', code: 'PROVIDER_CREDENTIAL_REJECTED', reason: '401' });
    expect((await getCredential(pool, id))!.disabled_reason).toBe('rotated by admin');
  });

  it('never lets concurrent claimers overshoot a credential, with two providers sharing one pool', async () => {
    const shared = await addCredential('shared', 'only', { concurrency: 3 });
    await enqueue('router', 20);
    await enqueue('space', 20);
    const claimShared = (provider: string) =>
      claimTasks(pool, NO_HINTS, {
        provider,
        workerId,
        want: 2,
        providerLimit: 100,
        deadAfterMs: 30_000,
        credentialPool: 'shared',
      });
    const claimed = (
      await Promise.all(Array.from({ length: 8 }, (_, i) => claimShared(i % 2 ? 'router' : 'space')))
    ).flat();
    expect(claimed).toHaveLength(3);
    expect(new Set(claimed.map((task) => task.credential_id))).toEqual(new Set([shared]));
  });
});
