import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startComfyUIFake, type ComfyUIFake } from '../fakes/comfyui.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { eventually, killAll, spawnEasel, type EaselProcess } from '../helpers/processes.js';
import { openSse } from '../helpers/sse.js';

let fake: ComfyUIFake;
let easel: TestEasel | undefined;
const processes: EaselProcess[] = [];

beforeEach(async () => {
  fake = await startComfyUIFake();
});
afterEach(async () => {
  await killAll(processes.splice(0));
  await easel?.stop();
  easel = undefined;
  await fake.close();
});

describe('comfyui through Easel', () => {
  it('progress messages become Easel progress events in order, and cancel interrupts only the canceled prompt while the other runs on', async () => {
    easel = await startTestEasel(await createTestDatabase(), {
      env: {
        COMFYUI_URLS: fake.url,
        COMFYUI_POLL_INTERVAL_MS: '50',
        EASEL_SECRET_KEY: randomBytes(32).toString('hex'),
      },
    });
    // Two prompts on one backend at once: the backend's slots are the credential's concurrency.
    await easel.pool.query(`UPDATE credentials SET concurrency = 2 WHERE provider = 'comfyui'`);
    fake.stepMs = 300;

    const doomed = await api(easel.url, 'POST', '/v1/tasks', { provider: 'comfyui', prompt: 'doomed', steps: 50 });
    expect(doomed.status, JSON.stringify(doomed.body)).toBe(202);
    await eventually('the doomed prompt running on ComfyUI', async () => fake.running(), 20_000, 20);
    const doomedPrompt = fake.prompts[0]!.id;

    const kept = await api(easel.url, 'POST', '/v1/tasks', {
      provider: 'comfyui',
      prompt: 'kept',
      steps: 8,
      width: 128,
      height: 96,
    });
    const stream = await openSse(`${easel.url}/v1/events?task_id=${kept.body.id}`);
    await eventually('the kept prompt queued behind it', async () => fake.prompts[1], 20_000, 20);
    const keptPrompt = fake.prompts[1]!.id;

    const cancel = await api(easel.url, 'POST', `/v1/tasks/${doomed.body.id}/cancel`);
    expect([200, 202]).toContain(cancel.status);
    const canceled = await waitForStatus(easel.url, doomed.body.id, ['canceled', 'failed', 'succeeded'], 20_000);
    expect(canceled.status).toBe('canceled');

    const done = await waitForStatus(easel.url, kept.body.id, ['succeeded', 'failed', 'canceled'], 30_000);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.images[0]).toMatchObject({ width: 128, height: 96, content_type: 'image/png' });

    // Only the canceled prompt was stopped, by a targeted interrupt; nothing was deleted.
    expect(fake.interrupts).toEqual([{ asked: doomedPrompt, stopped: doomedPrompt }]);
    expect(fake.deleted).toEqual([]);
    expect(fake.history.get(doomedPrompt)?.status.status_str).toBe('error');
    expect(fake.history.get(keptPrompt)?.status.status_str).toBe('success');

    await stream.waitFor(() => stream.updates().some((u) => u.status === 'succeeded'), 10_000);
    stream.close();
    const updates = stream.updates();
    const statuses = updates.map((u) => u.status).filter((s, i, all) => s !== all[i - 1]);
    expect(statuses).toEqual(['queued', 'running', 'succeeded']);
    const generating = updates
      .filter((u) => u.type === 'task:progress' && u.stage === 'generating')
      .map((u) => Number(u.progress));
    // The sampler's steps arrive as rising percentages (throttled by the worker, never reordered).
    expect(new Set(generating).size).toBeGreaterThanOrEqual(3);
    expect(generating).toEqual([...generating].sort((a, b) => a - b));
    expect(generating.at(-1)).toBeGreaterThanOrEqual(75);
  }, 60_000);
});

describe('a worker killed while its ComfyUI prompt runs', () => {
  it('the next worker follows the same prompt by its id: one prompt queued, the task completes once', async () => {
    fake.stepMs = 150;
    const env = {
      COMFYUI_URLS: fake.url,
      COMFYUI_POLL_INTERVAL_MS: '50',
      EASEL_SECRET_KEY: randomBytes(32).toString('hex'),
    };
    const databaseUrl = await createTestDatabase();
    easel = await startTestEasel(databaseUrl, { roles: { api: true, worker: false }, env });
    const startWorker = () => {
      const worker = spawnEasel(['worker'], {
        ...env,
        DATABASE_URL: databaseUrl,
        EASEL_DATA_DIR: easel!.config.dataDir,
        EASEL_HEARTBEAT_MS: '300',
        EASEL_WORKER_DEAD_AFTER_MS: '2000',
        EASEL_SHUTDOWN_GRACE_MS: '500',
        EASEL_RESCUE_INTERVAL_MS: '300',
        EASEL_POLL_INTERVAL_MS: '200',
        EASEL_RETRY_BASE_MS: '50',
        EASEL_RETRY_MAX_MS: '200',
      });
      processes.push(worker);
      return worker;
    };
    const withOutput = (worker: EaselProcess) => (error: Error) => {
      throw new Error(`${error.message}\n--- worker output ---\n${worker.output().slice(-4000)}`);
    };

    const doomed = startWorker();
    const { body } = await api(easel.url, 'POST', '/v1/tasks', { provider: 'comfyui', prompt: 'survivor', steps: 30 });
    await eventually('the prompt running on ComfyUI', async () => fake.running(), 30_000, 20).catch(withOutput(doomed));
    doomed.child.kill('SIGKILL');
    await doomed.exited;

    const rescuer = startWorker();
    const done = await waitForStatus(easel.url, body.id, ['succeeded', 'failed'], 60_000).catch(withOutput(rescuer));
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.attempt).toBe(2);
    expect(fake.prompts).toHaveLength(1);
    expect(fake.interrupts).toEqual([]);
    const bytes = Buffer.from(await (await fetch(done.images[0]!.url)).arrayBuffer());
    expect(bytes.equals(fake.files.get('easel_00001_.png')!)).toBe(true);
  }, 90_000);
});
