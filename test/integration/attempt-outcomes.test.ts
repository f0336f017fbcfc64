import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_HINTS } from '../../src/db/notifier.js';
import type { Pool } from '../../src/db/pool.js';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { RetryableError } from '../../src/providers/errors.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import { createSketchProvider } from '../../src/providers/sketch/index.js';
import type { GeneratedImage, Provider, RunContext, TaskInput } from '../../src/providers/types.js';
import { solidPng } from '../helpers/images.js';
import { retryAttemptLater, saveProviderRef } from '../../src/tasks/attempt.js';
import { submitTask } from '../../src/tasks/submit.js';
import { INTERNAL_ERROR_MESSAGE } from '../../src/worker/run-attempt.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { startTestEasel, type TestEasel } from '../helpers/easel.js';
import { eventually } from '../helpers/processes.js';

/** What the fake provider does for a prompt; each test scripts its own. */
type Script = (input: TaskInput, ctx: RunContext) => Promise<GeneratedImage[]>;
const scripts = new Map<string, Script>();
const fake: Provider = {
  id: 'fake',
  models: () => [{ id: 'fake-v1', kinds: ['txt2img'], maxWidth: 512, maxHeight: 512, maxSteps: 50 }],
  run: (input, ctx) => scripts.get(input.prompt)!(input, ctx),
};
const registry = new ProviderRegistry([fake, createSketchProvider()]);

/** Resolves when the signal aborts, with the worker's reason. */
const aborted = (signal: AbortSignal) =>
  new Promise<unknown>((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

// A real PNG: the worker decodes every result to finish it (src/images/finish-image.ts).
const PNG_8X8 = await solidPng(8, 8, [10, 20, 30]);
const image = (): GeneratedImage => ({
  data: PNG_8X8,
  contentType: 'image/png',
  width: 8,
  height: 8,
  seed: 1,
});

let pool: Pool;
const started: TestEasel[] = [];

/** A fresh database and an in-process Easel (worker + API) with the fake provider. */
async function startEasel(env: Record<string, string>): Promise<TestEasel> {
  const easel = await startTestEasel(await createTestDatabase(), { registry, env });
  started.push(easel);
  return easel;
}

const enqueue = async (db: Pool, prompt: string, options: { provider?: string; maxAttempts?: number } = {}) =>
  (
    await submitTask(db, NO_HINTS, {
      userId: LOCAL_USER_ID,
      kind: 'txt2img',
      provider: options.provider ?? 'fake',
      model: options.provider === 'sketch' ? 'sketch-v1' : 'fake-v1',
      params: { prompt, negative_prompt: null, width: 64, height: 64, steps: 20, guidance: 7, n: 1, seed: 3 },
      providerOptions: options.provider === 'sketch' ? { delay_ms: 700 } : {},
      priority: 5,
      maxAttempts: options.maxAttempts ?? 1,
    })
  ).task.id;

const row = async (db: Pool, taskId: string) =>
  (await db.query('SELECT * FROM tasks WHERE id = $1', [taskId])).rows[0] as Record<string, unknown>;

const waitForRunning = (db: Pool, taskId: string) =>
  eventually('the task to run', async () => (await row(db, taskId))?.status === 'running', 15_000, 20);

const takeLeaseAway = (db: Pool, taskId: string) =>
  db.query('UPDATE tasks SET lease_token = gen_random_uuid() WHERE id = $1', [taskId]);

afterAll(async () => {
  for (const easel of started) await easel.stop();
});

describe('a worker with a fast heartbeat', () => {
  let easel: TestEasel;
  beforeAll(async () => {
    easel = await startEasel({
      EASEL_HEARTBEAT_MS: '200',
      EASEL_WORKER_DEAD_AFTER_MS: '5000',
      EASEL_SHUTDOWN_GRACE_MS: '1000',
    });
    pool = easel.pool;
  });

  it('aborts an attempt whose lease was taken away within a heartbeat or two, and records nothing', async () => {
    let reason: unknown;
    scripts.set('lease taken', async (_input, ctx) => {
      reason = await aborted(ctx.signal);
      throw reason;
    });
    const taskId = await enqueue(pool, 'lease taken');
    await waitForRunning(pool, taskId);
    await takeLeaseAway(pool, taskId);
    await eventually('the adapter to be aborted', async () => reason !== undefined, 3_000, 20);
    expect(reason).toMatchObject({ why: 'lease_lost' });
    await eventually('the attempt to end', async () => easel.worker!.activeTasks === 0, 3_000, 20);
    // The task belongs to whoever holds the new lease: untouched.
    expect(await row(pool, taskId)).toMatchObject({ status: 'running', error: null, attempt: 1 });
  });

  it('stores a safe message for an unexpected error, not its text', async () => {
    scripts.set('internal', async () => {
      throw new Error('EACCES: permission denied, open /home/operator/secret/state.json');
    });
    const taskId = await enqueue(pool, 'internal');
    const failed = await eventually(
      'the task to fail',
      async () => {
        const task = await row(pool, taskId);
        return task?.status === 'failed' ? task : undefined;
      },
      15_000,
    );
    expect(failed.error).toEqual({ code: 'INTERNAL', message: INTERNAL_ERROR_MESSAGE });
  });

  it('clears provider_ref when a retryable failure ended the upstream request', async () => {
    const seen: Array<string | null> = [];
    scripts.set('ref then fail', async (input, ctx) => {
      seen.push(input.providerRef);
      if (input.attempt === 1) {
        await ctx.saveProviderRef('upstream-1');
        throw new RetryableError('PROVIDER_UNAVAILABLE', 'upstream answered 503');
      }
      return [image()];
    });
    const taskId = await enqueue(pool, 'ref then fail', { maxAttempts: 2 });
    await eventually('the task to succeed', async () => (await row(pool, taskId))?.status === 'succeeded', 15_000);
    // The second attempt must not "resume" the request that just failed.
    expect(seen).toEqual([null, null]);
  });

  it('no progress event of an attempt follows its terminal event, over many tasks', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await enqueue(pool, `progress ${i}`, { provider: 'sketch', maxAttempts: 1 }));
    await eventually(
      'all tasks to finish',
      async () =>
        Number(
          (
            await pool.query(`SELECT count(*) AS n FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'`, [
              ids,
            ])
          ).rows[0].n,
        ) === ids.length,
      60_000,
      100,
    );
    const { rows: progress } = await pool.query(
      `SELECT count(*)::int AS n FROM task_events WHERE type = 'task:progress' AND task_id = ANY($1::uuid[])`,
      [ids],
    );
    expect(progress[0].n).toBeGreaterThan(0); // the check below has something to check
    const { rows } = await pool.query(
      `SELECT p.task_id, p.id AS progress_id, t.id AS terminal_id
       FROM task_events p JOIN task_events t
         ON t.task_id = p.task_id AND t.data->>'attempt' = p.data->>'attempt'
        AND t.type IN ('task:succeeded', 'task:failed', 'task:canceled', 'task:retrying')
       WHERE p.type = 'task:progress' AND p.task_id = ANY($1::uuid[])
         AND (p.tx_id, p.id) > (t.tx_id, t.id)`,
      [ids],
    );
    expect(rows).toEqual([]);
  }, 90_000);
});

describe('a worker whose heartbeat is too slow to notice', () => {
  let easel: TestEasel;
  let slowPool: Pool;
  beforeAll(async () => {
    easel = await startEasel({
      EASEL_HEARTBEAT_MS: '30000',
      EASEL_WORKER_DEAD_AFTER_MS: '60000',
      EASEL_SHUTDOWN_GRACE_MS: '1000',
    });
    slowPool = easel.pool;
  });

  it('aborts the attempt when saving the provider ref finds the lease gone', async () => {
    const go = gate();
    let saveFailed: unknown;
    let reason: unknown;
    scripts.set('ref after lease lost', async (_input, ctx) => {
      await go.opened;
      await ctx.saveProviderRef('upstream-2').catch((error: unknown) => (saveFailed = error));
      reason = ctx.signal.reason;
      throw saveFailed;
    });
    const taskId = await enqueue(slowPool, 'ref after lease lost');
    await waitForRunning(slowPool, taskId);
    await takeLeaseAway(slowPool, taskId);
    go.open();
    await eventually('the attempt to end', async () => easel.worker!.activeTasks === 0, 5_000, 20);
    expect(saveFailed).toMatchObject({ why: 'lease_lost' });
    expect(reason).toMatchObject({ why: 'lease_lost' });
    expect(await row(slowPool, taskId)).toMatchObject({ status: 'running', provider_ref: null, error: null });
  });

  it('deletes the images of an attempt whose success write lost the lease', async () => {
    const go = gate();
    scripts.set('finishes after lease lost', async () => {
      await go.opened;
      return [image()];
    });
    const taskId = await enqueue(slowPool, 'finishes after lease lost');
    await waitForRunning(slowPool, taskId);
    await takeLeaseAway(slowPool, taskId);
    go.open();
    await eventually('the attempt to end', async () => easel.worker!.activeTasks === 0, 5_000, 20);
    const folder = path.join(easel.config.dataDir, 'images', 'tasks', taskId.slice(-2));
    const left = await readdir(folder).catch(() => [] as string[]);
    expect(left.filter((name) => name.startsWith(taskId))).toEqual([]);
    expect(await row(slowPool, taskId)).toMatchObject({ status: 'running' });
  });
});

describe('retryAttemptLater', () => {
  it('keeps provider_ref only when asked to (the attempt timed out; the upstream request lives on)', async () => {
    const db = await createTestPool(await createTestDatabase());
    try {
      for (const keepProviderRef of [true, false]) {
        const taskId = await enqueue(db, `retry keeps ref: ${keepProviderRef}`);
        const {
          rows: [claimed],
        } = await db.query(
          `UPDATE tasks SET status = 'running', attempt = 1, lease_token = gen_random_uuid(), started_at = now()
           WHERE id = $1 RETURNING lease_token`,
          [taskId],
        );
        const lease = { taskId, token: claimed.lease_token as string, provider: 'fake' };
        expect(await saveProviderRef(db, lease, 'upstream-3')).toBe(true);
        const error = { code: 'ATTEMPT_TIMED_OUT', message: 'timed out' };
        expect(await retryAttemptLater(db, NO_HINTS, lease, error, 0, 1, { keepProviderRef })).toBe(true);
        expect(await row(db, taskId)).toMatchObject({
          status: 'queued',
          provider_ref: keepProviderRef ? 'upstream-3' : null,
        });
      }
    } finally {
      await db.end();
    }
  });
});
