import { thumbnailKey } from '../../src/images/thumbnail.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import path from 'node:path';
import sharp from 'sharp';
import { createLocalStorage } from '../../src/storage/local.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';

/**
 * The worker API's outcome mapping and fencing, driven by hand over HTTP (the e2e test runs the
 * real remote worker): each outcome lands as a local worker's would, and a stale lease is 409.
 */
let easel: TestEasel;
let auth: Record<string, string>;
const workerId = uuidv7();

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), { roles: { api: true, worker: false } });
  const created = await api<{ token: string }>(easel.url, 'POST', '/v1/admin/worker-tokens', { label: 'by hand' });
  auth = { authorization: `Bearer ${created.body.token}` };
  const registered = await api(
    easel.url,
    'POST',
    '/v1/worker/register',
    { worker_id: workerId, providers: ['sketch'], concurrency: 4, version: 'test', host: 'test-host' },
    auth,
  );
  expect(registered.status).toBe(200);
}, 60_000);
afterAll(async () => {
  await easel?.stop();
});

interface Claimed {
  id: string;
  lease_token: string;
  attempt: number;
  params: { prompt: string };
}

const call = <T = { code: string }>(route: string, body: unknown) => api<T>(easel.url, 'POST', route, body, auth);

async function submitAndClaim(prompt: string, extra: Record<string, unknown> = {}): Promise<Claimed> {
  const submitted = await api(easel.url, 'POST', '/v1/tasks', { prompt, width: 64, height: 64, ...extra });
  expect(submitted.status).toBe(202);
  const claimed = await call<{ tasks: Claimed[] }>('/v1/worker/claim', {
    worker_id: workerId,
    providers: ['sketch'],
    want: 1,
    wait_seconds: 5,
  });
  expect(claimed.status).toBe(200);
  expect(claimed.body.tasks).toHaveLength(1);
  expect(claimed.body.tasks[0]!.id).toBe(submitted.body.id);
  return claimed.body.tasks[0]!;
}

const task = async (id: string) =>
  (
    await easel.pool.query<{ status: string; attempt: number; error: { code: string } | null; lease_token: string }>(
      'SELECT status, attempt, error, lease_token FROM tasks WHERE id = $1',
      [id],
    )
  ).rows[0]!;

const failure = (claimed: Claimed, extra: Record<string, unknown>) => ({
  lease_token: claimed.lease_token,
  error_class: 'retryable',
  error: { code: 'PROVIDER_UNAVAILABLE', message: 'the backend answered 503' },
  predict_time_seconds: 0.5,
  ...extra,
});

const upload = (id: string, token: string, index: number, body: Buffer, contentType = 'image/png') =>
  fetch(`${easel.url}/v1/worker/tasks/${id}/images/${index}?lease_token=${token}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': contentType },
    body,
  });

describe('the worker API', () => {
  it('answers a long poll as soon as a task is submitted', async () => {
    const started = Date.now();
    const poll = call<{ tasks: Claimed[] }>('/v1/worker/claim', {
      worker_id: workerId,
      providers: ['sketch'],
      want: 1,
      wait_seconds: 20,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const submitted = await api(easel.url, 'POST', '/v1/tasks', { prompt: 'wake up', width: 64, height: 64 });
    const answer = await poll;
    expect(answer.body.tasks.map((t) => t.id)).toEqual([submitted.body.id]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.body.tasks[0]!.params.prompt).toBe('wake up');
    // Give it back so the next tests start from an empty queue.
    expect(
      (
        await call(
          `/v1/worker/tasks/${submitted.body.id}/fail`,
          failure(answer.body.tasks[0]!, { aborted: 'shutdown' }),
        )
      ).status,
    ).toBe(200);
    await easel.pool.query(`UPDATE tasks SET status = 'canceled', finished_at = now() WHERE id = $1`, [
      submitted.body.id,
    ]);
  }, 30_000);

  it('answers an empty list when nothing comes within wait_seconds', async () => {
    const answer = await call<{ tasks: Claimed[] }>('/v1/worker/claim', {
      worker_id: workerId,
      providers: ['sketch'],
      want: 1,
      wait_seconds: 1,
    });
    expect(answer.body.tasks).toEqual([]);
  });

  it('maps outcomes as a local worker does: retryable retries (counted), shutdown hands back uncounted, permanent fails', async () => {
    const retried = await submitAndClaim('retry me');
    expect((await call(`/v1/worker/tasks/${retried.id}/fail`, failure(retried, {}))).status).toBe(200);
    expect(await task(retried.id)).toMatchObject({
      status: 'queued',
      attempt: 1,
      error: { code: 'PROVIDER_UNAVAILABLE' },
    });
    await easel.pool.query(`UPDATE tasks SET status = 'canceled', finished_at = now() WHERE id = $1`, [retried.id]);

    const handedBack = await submitAndClaim('shut down');
    expect(
      (await call(`/v1/worker/tasks/${handedBack.id}/fail`, failure(handedBack, { aborted: 'shutdown' }))).status,
    ).toBe(200);
    expect(await task(handedBack.id)).toMatchObject({ status: 'queued', attempt: 0 });
    await easel.pool.query(`UPDATE tasks SET status = 'canceled', finished_at = now() WHERE id = $1`, [handedBack.id]);

    const refused = await submitAndClaim('refuse me');
    const permanent = failure(refused, {
      error_class: 'permanent',
      error: { code: 'CONTENT_POLICY', message: 'refused' },
    });
    expect((await call(`/v1/worker/tasks/${refused.id}/fail`, permanent)).status).toBe(200);
    expect(await task(refused.id)).toMatchObject({ status: 'failed', error: { code: 'CONTENT_POLICY' } });
    // The same call again: the lease is gone, nothing changes.
    const again = await call(`/v1/worker/tasks/${refused.id}/fail`, {
      ...permanent,
      error: { code: 'X', message: 'x' },
    });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('LEASE_LOST');
    expect(await task(refused.id)).toMatchObject({ status: 'failed', error: { code: 'CONTENT_POLICY' } });
  }, 30_000);

  it('records a success once from uploaded images, read back from storage; a stale lease stores nothing', async () => {
    const claimed = await submitAndClaim('succeed');
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    expect(
      (
        await call(`/v1/worker/tasks/${claimed.id}/progress`, {
          lease_token: claimed.lease_token,
          stage: 'generating',
          progress: 40,
        })
      ).status,
    ).toBe(200);
    const wrongType = await upload(claimed.id, claimed.lease_token, 0, Buffer.from('hello'), 'text/plain');
    expect(wrongType.status).toBe(415);
    const missing = await call<{ code: string }>(`/v1/worker/tasks/${claimed.id}/succeed`, {
      lease_token: claimed.lease_token,
      predict_time_seconds: 1,
      images: [{ index: 0, content_type: 'image/png', seed: 5 }],
    });
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe('WORKER_IMAGE_MISSING');
    const uploaded = await upload(claimed.id, claimed.lease_token, 0, png);
    expect(uploaded.status).toBe(200);
    expect(((await uploaded.json()) as { bytes: number }).bytes).toBe(png.length);
    const succeed = {
      lease_token: claimed.lease_token,
      predict_time_seconds: 1.5,
      images: [{ index: 0, content_type: 'image/png', seed: 5 }],
    };
    expect((await call(`/v1/worker/tasks/${claimed.id}/succeed`, succeed)).status).toBe(200);
    // A repeat whose first answer was lost is answered the same, and records nothing twice.
    expect((await call(`/v1/worker/tasks/${claimed.id}/succeed`, succeed)).status).toBe(200);
    const done = await api(easel.url, 'GET', `/v1/tasks/${claimed.id}`);
    expect(done.body).toMatchObject({ status: 'succeeded', predict_time: 1.5 });
    expect(done.body.images).toEqual([expect.objectContaining({ width: 64, height: 48, seed: 5, bytes: png.length })]);

    // After the end, every call of the lease is 409 and an upload is not kept.
    const late = await upload(claimed.id, claimed.lease_token, 1, png);
    expect(late.status).toBe(409);
    const ref = await call(`/v1/worker/tasks/${claimed.id}/provider-ref`, {
      lease_token: claimed.lease_token,
      provider_ref: 'late',
    });
    expect(ref.status).toBe(409);
    const images = await easel.pool.query('SELECT storage_key FROM task_images WHERE task_id = $1', [claimed.id]);
    expect(images.rows).toHaveLength(1);
    // Only the recorded image (and its thumbnail) is in storage: the late upload was not kept.
    const storage = createLocalStorage(path.join(easel.config.dataDir, 'images'));
    const kept: string[] = [];
    for await (const object of storage.list(`tasks/${claimed.id.slice(-2)}/${claimed.id}-`)) kept.push(object.key);
    const recorded = images.rows[0]!.storage_key as string;
    expect(kept.sort()).toEqual([recorded, thumbnailKey(recorded)].sort());
  }, 30_000);

  it("stores a remote worker's preview as a local worker's, and finishes its uploads once: format and thumbnail", async () => {
    const claimed = await submitAndClaim('preview and webp', { output_format: 'webp', output_quality: 80 });
    const frame = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#aa0000' } })
      .png()
      .toBuffer();
    const progress = await call(`/v1/worker/tasks/${claimed.id}/progress`, {
      lease_token: claimed.lease_token,
      stage: 'generating',
      progress: 50,
      preview: { content_type: 'image/png', data_base64: frame.toString('base64') },
    });
    expect(progress.status).toBe(200);
    const running = await api(easel.url, 'GET', `/v1/tasks/${claimed.id}`);
    expect(running.body.preview_url).toMatch(new RegExp(`/v1/tasks/${claimed.id}/preview\\?v=1$`));
    const served = await fetch(running.body.preview_url as string);
    expect(served.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await served.arrayBuffer()).equals(frame)).toBe(true);

    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    expect((await upload(claimed.id, claimed.lease_token, 0, png)).status).toBe(200);
    const succeed = await call(`/v1/worker/tasks/${claimed.id}/succeed`, {
      lease_token: claimed.lease_token,
      predict_time_seconds: 1,
      images: [{ index: 0, content_type: 'image/png', seed: 7 }],
    });
    expect(succeed.status).toBe(200);
    const done = await api(easel.url, 'GET', `/v1/tasks/${claimed.id}`);
    expect(done.body.preview_url).toBeNull();
    expect(done.body.images).toEqual([
      expect.objectContaining({ content_type: 'image/webp', width: 64, height: 48, seed: 7 }),
    ]);
    const image = await fetch(done.body.images[0]!.url as string);
    expect((await sharp(Buffer.from(await image.arrayBuffer())).metadata()).format).toBe('webp');
    const thumbnail = await fetch(done.body.images[0]!.thumbnail_url as string);
    expect(thumbnail.headers.get('content-type')).toBe('image/webp');
    // The raw PNG upload is gone: only the finished image and its thumbnail are kept.
    const storage = createLocalStorage(path.join(easel.config.dataDir, 'images'));
    const kept: string[] = [];
    for await (const object of storage.list(`tasks/${claimed.id.slice(-2)}/${claimed.id}-`)) kept.push(object.key);
    expect(kept.sort()).toEqual([expect.stringMatching(/\.webp$/), expect.stringMatching(/\.webp\.thumb\.webp$/)]);
  }, 30_000);

  it('refuses a heartbeat or claim for another token’s worker id', async () => {
    const other = await api<{ token: string }>(easel.url, 'POST', '/v1/admin/worker-tokens', { label: 'other' });
    const otherAuth = { authorization: `Bearer ${other.body.token}` };
    const beat = await api<{ code: string }>(
      easel.url,
      'POST',
      '/v1/worker/heartbeat',
      { worker_id: workerId, concurrency: 1, leases: [] },
      otherAuth,
    );
    expect(beat.status).toBe(400);
    const register = await api<{ code: string }>(
      easel.url,
      'POST',
      '/v1/worker/register',
      { worker_id: workerId, providers: ['sketch'], concurrency: 1, version: 'x', host: 'evil' },
      otherAuth,
    );
    expect(register.status).toBe(400);
  });
});
