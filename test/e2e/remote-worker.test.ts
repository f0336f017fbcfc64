import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, waitForStatus, type TestEasel } from '../helpers/easel.js';
import { eventually, killAll, runCli, spawnEasel, succeeded, type EaselProcess } from '../helpers/processes.js';

/**
 * Remote workers as real processes: an Easel API with no local worker, and `easel worker
 * --remote` child processes that reach it over HTTP with a worker token and run sketch.
 */
let easel: TestEasel;
const processes: EaselProcess[] = [];

beforeAll(async () => {
  const databaseUrl = await createTestDatabase();
  easel = await startTestEasel(databaseUrl, {
    roles: { api: true, worker: false },
    // A short dead-after, so a killed worker's task is rescued in seconds, not half a minute.
    env: {
      EASEL_HEARTBEAT_MS: '500',
      EASEL_WORKER_DEAD_AFTER_MS: '3000',
      EASEL_RESCUE_INTERVAL_MS: '500',
      EASEL_SHUTDOWN_GRACE_MS: '1000',
    },
  });
}, 60_000);
afterEach(() => killAll(processes));
afterAll(async () => {
  await easel?.stop();
});

const count = async (sql: string, values: unknown[] = []) =>
  Number((await easel.pool.query<{ n: string }>(sql, values)).rows[0]!.n);

async function createToken(label: string): Promise<{ id: string; token: string }> {
  const created = await api<{ id: string; token: string; display: string }>(
    easel.url,
    'POST',
    '/v1/admin/worker-tokens',
    { label },
  );
  expect(created.status).toBe(201);
  expect(created.body.token).toMatch(/^easel_wk_/);
  return created.body;
}

function startRemote(token: string): EaselProcess {
  const worker = spawnEasel(['worker', '--remote', easel.url, '--token', token], {
    // Nothing of the server's: no database, and the worker's own settings.
    DATABASE_URL: '',
    EASEL_WORKER_PROVIDERS: 'sketch',
    EASEL_WORKER_CONCURRENCY: '2',
    EASEL_SHUTDOWN_GRACE_MS: '1000',
  });
  processes.push(worker);
  return worker;
}

const submit = async (prompt: string, options: Record<string, unknown> = {}) => {
  const submitted = await api(easel.url, 'POST', '/v1/tasks', {
    prompt,
    provider: 'sketch',
    model: 'sketch-v1',
    width: 64,
    height: 64,
    seed: 11,
    ...(Object.keys(options).length > 0 ? { provider_options: options } : {}),
  });
  expect(submitted.status).toBe(202);
  return submitted.body.id;
};

const withOutput = (worker: EaselProcess) => (error: Error) => {
  throw new Error(`${error.message}\n--- worker output ---\n${worker.output().slice(-3000)}`);
};

describe('remote workers', () => {
  it('run tasks over HTTP: claimed, reported, uploaded and recorded like a local worker', async () => {
    const { token } = await createToken('gpu-a');
    const worker = startRemote(token);
    const ids = [await submit('remote one'), await submit('remote two'), await submit('remote three')];
    for (const id of ids) {
      const done = await waitForStatus(easel.url, id, ['succeeded', 'failed'], 60_000).catch(withOutput(worker));
      expect(done.status, worker.output().slice(-2000)).toBe('succeeded');
      expect(done.images).toHaveLength(1);
      const image = await fetch(done.images[0]!.url);
      expect(image.status).toBe(200);
      expect(image.headers.get('content-type')).toBe('image/png');
    }
    const { rows } = await easel.pool.query<{ token_id: string | null; providers: string[]; pid: number }>(
      'SELECT DISTINCT w.token_id, w.providers, w.pid FROM tasks t JOIN workers w ON w.id = t.worker_id WHERE t.id = ANY($1)',
      [ids],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ providers: ['sketch'], pid: 0 });
    expect(rows[0]!.token_id).not.toBeNull();
    expect(await count('SELECT count(*) AS n FROM task_images WHERE task_id = ANY($1)', [ids])).toBe(3);
  }, 120_000);

  it('rescues the task of a remote worker killed mid-task within 45 s; it completes once; late calls of the dead lease change nothing', async () => {
    const { token } = await createToken('gpu-doomed');
    const doomed = startRemote(token);
    const id = await submit('rescued', { delay_ms: 4000 });
    const first = await eventually(
      'the remote worker to start the task',
      async () => {
        const { rows } = await easel.pool.query<{ lease_token: string; worker_id: string }>(
          `SELECT lease_token, worker_id FROM tasks WHERE id = $1 AND status = 'running'`,
          [id],
        );
        return rows[0];
      },
      40_000,
    ).catch(withOutput(doomed));
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const killedAt = Date.now();

    const rescuer = startRemote(token);
    const done = await waitForStatus(easel.url, id, ['succeeded', 'failed'], 45_000).catch(withOutput(rescuer));
    expect(Date.now() - killedAt).toBeLessThan(45_000);
    expect(done.status).toBe('succeeded');
    expect(done.attempt).toBe(2);

    const snapshot = async () => ({
      task: (
        await easel.pool.query(
          'SELECT status, attempt, rescues, lease_token, worker_id, finished_at, predict_time FROM tasks WHERE id = $1',
          [id],
        )
      ).rows[0],
      images: (await easel.pool.query('SELECT storage_key, sha256 FROM task_images WHERE task_id = $1', [id])).rows,
      events: await count('SELECT count(*) AS n FROM task_events WHERE task_id = $1', [id]),
      ledger: await count('SELECT count(*) AS n FROM credit_ledger WHERE user_id = $1', [LOCAL_USER_ID]),
    });
    const before = await snapshot();
    expect(before.task).toMatchObject({ status: 'succeeded', rescues: 1 });
    expect(before.images).toHaveLength(1);
    expect(
      await count(`SELECT count(*) AS n FROM task_events WHERE task_id = $1 AND type = 'task:succeeded'`, [id]),
    ).toBe(1);

    // The dead worker's lease, as it would send it had it only been cut off and come back late.
    const dead = { authorization: `Bearer ${token}` };
    const late = (route: string, body: unknown) =>
      api<{ code: string }>(easel.url, 'POST', `/v1/worker/tasks/${id}/${route}`, body, dead);
    const png = await (await fetch(done.images[0]!.url as string)).arrayBuffer();
    const upload = await fetch(`${easel.url}/v1/worker/tasks/${id}/images/0?lease_token=${first.lease_token}`, {
      method: 'PUT',
      headers: { ...dead, 'content-type': 'image/png' },
      body: Buffer.from(png),
    });
    expect(upload.status).toBe(409);
    expect(((await upload.json()) as { code: string }).code).toBe('LEASE_LOST');
    const succeed = await late('succeed', {
      lease_token: first.lease_token,
      predict_time_seconds: 1,
      images: [{ index: 0, content_type: 'image/png', seed: 11 }],
    });
    expect(succeed.status).toBe(409);
    expect(succeed.body.code).toBe('LEASE_LOST');
    const fail = await late('fail', {
      lease_token: first.lease_token,
      error_class: 'permanent',
      error: { code: 'LATE', message: 'a late failure' },
      predict_time_seconds: 1,
    });
    expect(fail.status).toBe(409);
    const progress = await late('progress', { lease_token: first.lease_token, stage: 'late', progress: 50 });
    expect(progress.status).toBe(409);
    expect(await snapshot()).toEqual(before);
    // Nothing of the dead lease was kept in storage.
    const shard = path.join(easel.config.dataDir, 'images', 'tasks', id.slice(-2));
    const files = await readdir(shard);
    expect(files.filter((name) => name.includes(first.lease_token.slice(0, 8)))).toEqual([]);
  }, 150_000);

  it('waits out an API that is not reachable yet, then registers and runs tasks', async () => {
    const { token } = await createToken('gpu-early');
    // A port with nothing behind it yet: connections are refused until the forwarder below opens.
    const reserved = net.createServer();
    await new Promise<void>((resolve) => reserved.listen(0, '127.0.0.1', resolve));
    const port = (reserved.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => reserved.close(() => resolve()));
    const worker = spawnEasel(['worker', '--remote', `http://127.0.0.1:${port}`, '--token', token], {
      DATABASE_URL: '',
      EASEL_WORKER_PROVIDERS: 'sketch',
    });
    processes.push(worker);
    const id = await submit('after the outage');
    await eventually(
      'the worker to try and fail',
      async () => worker.output().includes('did not answer'),
      40_000,
    ).catch(withOutput(worker));
    const target = new URL(easel.url);
    const forwarder = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(port, '127.0.0.1', resolve));
    try {
      const done = await waitForStatus(easel.url, id, ['succeeded', 'failed'], 60_000).catch(withOutput(worker));
      expect(done.status).toBe('succeeded');
    } finally {
      await killAll(processes);
      await new Promise<void>((resolve) => forwarder.close(() => resolve()));
    }
  }, 120_000);

  it('exits non-zero with a clear line when its token is revoked', async () => {
    const { id, token } = await createToken('gpu-revoked');
    const worker = startRemote(token);
    await eventually(
      'the worker to register',
      async () => (await count('SELECT count(*) AS n FROM workers WHERE token_id = $1', [id])) > 0,
      40_000,
    ).catch(withOutput(worker));
    const revoked = await api(easel.url, 'DELETE', `/v1/admin/worker-tokens/${id}`);
    expect(revoked.status).toBe(200);
    const code = await Promise.race([
      worker.exited,
      new Promise((resolve) => setTimeout(() => resolve('running'), 40_000)),
    ]);
    expect(code, worker.output().slice(-2000)).toBe(3);
    expect(worker.output()).toContain('refused the worker token');
  }, 90_000);

  it('keeps worker tokens and API keys apart', async () => {
    const { token } = await createToken('gpu-scoped');
    const asWorker = { authorization: `Bearer ${token}` };
    const tasks = await api<{ code: string }>(easel.url, 'GET', '/v1/tasks', undefined, asWorker);
    expect(tasks.status).toBe(401);
    expect(tasks.body.code).toBe('WORKER_TOKEN_NOT_ALLOWED');
    const adminRoute = await api<{ code: string }>(easel.url, 'GET', '/v1/admin/worker-tokens', undefined, asWorker);
    expect(adminRoute.body.code).toBe('WORKER_TOKEN_NOT_ALLOWED');

    const key = await api<{ key: string }>(easel.url, 'POST', `/v1/users/${LOCAL_USER_ID}/keys`, { name: 'admin key' });
    expect(key.status).toBe(201);
    const claim = {
      worker_id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
      providers: ['sketch'],
      want: 1,
      wait_seconds: 0,
    };
    const withKey = await api<{ code: string }>(easel.url, 'POST', '/v1/worker/claim', claim, {
      authorization: `Bearer ${key.body.key}`,
    });
    expect(withKey.status).toBe(401);
    expect(withKey.body.code).toBe('WORKER_TOKEN_REQUIRED');
    // Local mode's keyless admin is no worker either.
    const keyless = await api<{ code: string }>(easel.url, 'POST', '/v1/worker/claim', claim);
    expect(keyless.body.code).toBe('WORKER_TOKEN_REQUIRED');
    // A worker id must be registered before it claims.
    const unregistered = await api<{ code: string }>(easel.url, 'POST', '/v1/worker/claim', claim, asWorker);
    expect(unregistered.status).toBe(400);
  });
});

describe('easel worker-tokens', () => {
  it('creates (the token alone on stdout), lists and revokes worker tokens', async () => {
    const cli = (...args: string[]) => runCli(args, { env: { EASEL_URL: easel.url } });
    const created = succeeded(await cli('worker-tokens', 'create', 'gpu-cli'));
    const token = created.stdout.trim();
    expect(token).toMatch(/^easel_wk_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('shown this once');
    const listed = succeeded(await cli('worker-tokens', 'ls')).stdout;
    const line = listed.split('\n').find((row) => row.endsWith('gpu-cli'))!;
    expect(line).toContain(`${token.slice(0, 17)}…`);
    expect(listed).not.toContain(token);
    const id = line.split(' ')[0]!;
    expect(succeeded(await cli('worker-tokens', 'revoke', id)).stdout).toMatch(new RegExp(`^${id} revoked at `));
    const refused = await api<{ code: string }>(
      easel.url,
      'POST',
      '/v1/worker/heartbeat',
      { worker_id: id, concurrency: 1, leases: [] },
      { authorization: `Bearer ${token}` },
    );
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe('INVALID_WORKER_TOKEN');
  }, 60_000);
});
