import { createHash } from 'node:crypto';
import { mkdtemp, readdir } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/auth/api-keys.js';
import type { Pool } from '../../src/db/pool.js';
import { api, waitForStatus } from '../helpers/easel.js';
import { createTestDatabase, createTestPool } from '../helpers/database.js';
import { eventually, killAll, runCli, spawnEasel, type EaselProcess } from '../helpers/processes.js';
import { startTestS3, type TestS3 } from '../helpers/s3-server.js';

/**
 * `easel api` and `easel worker` as two OS processes, each with its own data folder, sharing
 * nothing but PostgreSQL and the bucket: the worker stores, the API serves. The bucket is
 * s3rver behind a front that checks presigned signatures and their expiry like S3 does.
 */
interface Problem {
  code: string;
  status: number;
}

let databaseUrl: string;
let pool: Pool;
let s3: TestS3;
let apiUrl: string;
const processes: EaselProcess[] = [];
const { key: adminKey } = generateKey();
const auth = { authorization: `Bearer ${adminKey}` };
const dataDirs: Record<'api' | 'worker', string> = { api: '', worker: '' };

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

const started = async (process: EaselProcess, line: string) => {
  processes.push(process);
  await eventually(`"${line}"`, async () => process.output().includes(line), 60_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${process.output()}`);
  });
};

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  pool = await createTestPool(databaseUrl);
  s3 = await startTestS3();
  dataDirs.api = await mkdtemp(path.join(os.tmpdir(), 'easel-s3-api-'));
  dataDirs.worker = await mkdtemp(path.join(os.tmpdir(), 'easel-s3-worker-'));
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  await started(
    spawnEasel(['api'], {
      ...s3.env,
      DATABASE_URL: databaseUrl,
      EASEL_DATA_DIR: dataDirs.api,
      HOST: '127.0.0.1',
      PORT: String(port),
      EASEL_AUTH: 'required',
      EASEL_ADMIN_KEY: adminKey,
      EASEL_URL_SIGNING_KEY: 'a-signing-key-for-this-test-only-0123456789',
      EASEL_SIGNED_URL_SECONDS: '4',
      EASEL_PRESIGN_SECONDS: '4',
    }),
    'Easel API listening',
  );
  await started(
    spawnEasel(['worker'], {
      ...s3.env,
      DATABASE_URL: databaseUrl,
      EASEL_DATA_DIR: dataDirs.worker,
      EASEL_MAX_ATTEMPTS: '20',
      EASEL_RETRY_BASE_MS: '200',
      EASEL_RETRY_MAX_MS: '500',
      EASEL_POLL_INTERVAL_MS: '100',
    }),
    'image storage ready',
  );
}, 120_000);
afterEach(() => s3.setAvailable(true));
afterAll(async () => {
  await killAll(processes);
  await pool?.end();
  await s3?.close();
});

const submit = async (prompt: string) => {
  const { status, body } = await api(apiUrl, 'POST', '/v1/tasks', { prompt, width: 64, height: 64, seed: 5 }, auth);
  expect(status, JSON.stringify(body)).toBe(202);
  return body;
};

const storageKeyOf = async (taskId: string) =>
  (await pool.query<{ storage_key: string }>('SELECT storage_key FROM task_images WHERE task_id = $1', [taskId]))
    .rows[0]?.storage_key;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('S3 storage with API and worker as separate processes', () => {
  it('the worker stores into the bucket; the API redirects to a presigned URL; a signed URL needs no key', async () => {
    const task = await submit('a lighthouse in the bucket');
    const done = await waitForStatus(apiUrl, task.id, ['succeeded', 'failed'], 30_000, auth);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const image = done.images[0]!;
    // Absolute, from the request's own origin (no EASEL_PUBLIC_URL here).
    expect(image.url).toBe(`${apiUrl}/v1/tasks/${task.id}/images/0`);
    expect(image.signed_url).toMatch(
      new RegExp(`^${apiUrl}/v1/tasks/${task.id}/images/0\\?expires=\\d+&signature=[A-Za-z0-9_-]{43}$`),
    );

    // The stored object is the image, byte for byte, as the server wrote it to disk.
    const key = await storageKeyOf(task.id);
    expect(key).toMatch(new RegExp(`^tasks/${task.id.slice(-2)}/${task.id}-[0-9a-f]{8}-0\\.png$`));
    const stored = await s3.storedBytes(key!);
    expect(sha256(stored)).toBe(image.sha256);
    expect(stored.length).toBe(image.bytes);

    const redirect = await fetch(image.url, { headers: auth, redirect: 'manual' });
    expect(redirect.status).toBe(302);
    const location = redirect.headers.get('location')!;
    expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/${key}?`)).toBe(true);
    expect(location).toContain('X-Amz-Signature=');
    const fromBucket = await fetch(location);
    expect(fromBucket.status).toBe(200);
    expect(fromBucket.headers.get('content-type')).toBe('image/png');
    expect(sha256(Buffer.from(await fromBucket.arrayBuffer()))).toBe(image.sha256);

    // Without a key: the plain URL is refused, the signed one is served (through the redirect).
    expect(((await api<Problem>(apiUrl, 'GET', `/v1/tasks/${task.id}/images/0`)).body as Problem).code).toBe(
      'AUTH_REQUIRED',
    );
    const viaSigned = await fetch(image.signed_url!);
    expect(viaSigned.status).toBe(200);
    expect(sha256(Buffer.from(await viaSigned.arrayBuffer()))).toBe(image.sha256);

    // A signature is for its own path only, and cannot be stretched.
    const signed = new URL(image.signed_url!);
    const other = await api<Problem>(apiUrl, 'GET', `/v1/tasks/${task.id}/images/1${signed.search}`);
    expect([other.status, other.body.code]).toEqual([403, 'SIGNED_URL_INVALID']);
    const later = new URL(signed);
    later.searchParams.set('expires', String(Number(signed.searchParams.get('expires')) + 3600));
    const stretched = await api<Problem>(apiUrl, 'GET', later.pathname + later.search);
    expect([stretched.status, stretched.body.code]).toEqual([403, 'SIGNED_URL_INVALID']);

    // Neither process wrote image bytes to its own folder.
    for (const dir of Object.values(dataDirs)) expect(await readdir(dir)).not.toContain('images');
  }, 60_000);

  it('presigned and signed URLs stop working once they expire (4 s here)', async () => {
    const task = await submit('short-lived links');
    const done = await waitForStatus(apiUrl, task.id, ['succeeded'], 30_000, auth);
    const { signed_url: signedUrl, url } = done.images[0]!;
    const presigned = (await fetch(url, { headers: auth, redirect: 'manual' })).headers.get('location')!;
    expect((await fetch(presigned)).status).toBe(200);
    expect((await fetch(signedUrl!, { redirect: 'manual' })).status).toBe(302);

    await new Promise((resolve) => setTimeout(resolve, 5500));
    const refusedByStore = await fetch(presigned);
    expect(refusedByStore.status).toBe(403);
    expect(await refusedByStore.text()).toContain('Request has expired');
    const expired = await api<Problem>(apiUrl, 'GET', signedUrl!.slice(apiUrl.length));
    expect([expired.status, expired.body.code]).toEqual([403, 'SIGNED_URL_EXPIRED']);
    // The stable URL with a key keeps working: it redirects to a fresh presigned URL.
    const fresh = (await fetch(url, { headers: auth, redirect: 'manual' })).headers.get('location')!;
    expect(fresh).not.toBe(presigned);
    expect((await fetch(fresh)).status).toBe(200);
  }, 60_000);

  it('a bucket that goes away mid-run makes attempts fail retryably, records no image, and succeeds once it is back', async () => {
    s3.setAvailable(false);
    const task = await submit('stored after the outage');
    const failedAttempt = await eventually(
      'an attempt to fail on storage',
      async () => {
        const { rows } = await pool.query<{ status: string; attempt: number; error: { code: string } | null }>(
          'SELECT status, attempt, error FROM tasks WHERE id = $1',
          [task.id],
        );
        return rows[0]?.error?.code === 'STORAGE_UNAVAILABLE' ? rows[0] : undefined;
      },
      30_000,
      50,
    );
    expect(failedAttempt.status).not.toBe('failed');
    expect(await storageKeyOf(task.id)).toBeUndefined();
    // An upload meanwhile is a clear 503 that names no store, not a 500.
    const form = new FormData();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    form.append('image', new Blob([png], { type: 'image/png' }), 'input.png');
    const upload = await fetch(`${apiUrl}/v1/uploads`, { method: 'POST', headers: auth, body: form });
    const problem = (await upload.json()) as Problem & { detail?: string };
    expect([upload.status, problem.code, upload.headers.get('retry-after')]).toEqual([503, 'STORAGE_UNAVAILABLE', '5']);
    expect(JSON.stringify(problem)).not.toContain(s3.endpoint);
    s3.setAvailable(true);

    const done = await waitForStatus(apiUrl, task.id, ['succeeded', 'failed'], 30_000, auth);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.attempt).toBeGreaterThan(1);
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM task_images WHERE task_id = $1', [task.id]);
    expect(rows[0].n).toBe(1);
    const key = await storageKeyOf(task.id);
    expect(sha256(await s3.storedBytes(key!))).toBe(done.images[0]!.sha256);
  }, 60_000);
});

describe('start-up against a bucket that cannot be used', () => {
  const env = () => ({ ...s3.env, DATABASE_URL: databaseUrl, EASEL_DATA_DIR: dataDirs.worker });

  it('stops with a message naming the endpoint and bucket when the store is unreachable', async () => {
    const closedPort = await freePort();
    const result = await runCli(['worker'], { env: { ...env(), S3_ENDPOINT: `http://127.0.0.1:${closedPort}` } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      `image storage: checking the bucket failed on bucket "easel-test" at http://127.0.0.1:${closedPort}`,
    );
    expect(result.stderr).toContain('ECONNREFUSED');
    expect(result.stderr).not.toContain('DATABASE_URL');
  }, 60_000);

  it('refuses a missing bucket when S3_CREATE_BUCKET=false, saying how to fix it', async () => {
    const missing = await runCli(['worker'], {
      env: { ...env(), S3_BUCKET: 'never-made', S3_CREATE_BUCKET: 'false' },
    });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/bucket "never-made" at .* does not exist; create it, or set S3_CREATE_BUCKET=true/);
  }, 60_000);
});
