import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, isAlive, spawnEasel, type EaselProcess } from '../helpers/processes.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

let dataDir: string;
let port: number;
let easel: EaselProcess | undefined;

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address() as net.AddressInfo;
      server.close(() => resolve(free));
    });
  });

/** `easel <args>` as a user would type it, against the running server. */
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx/esm', CLI, ...args], {
    env: { ...process.env, EASEL_URL: `http://127.0.0.1:${port}`, E2E_TOKEN: 'r8_EndToEndToken42' },
    timeout: 60_000,
  });

const postmasterPid = async () =>
  Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);

async function startEasel(): Promise<EaselProcess> {
  const started = spawnEasel(['start'], { EASEL_DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: '' });
  await eventually('easel start to listen', async () => started.output().includes('Easel API listening'), 60_000).catch(
    (error: Error) => {
      throw new Error(`${error.message}\n${started.output()}`);
    },
  );
  return started;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-e2e-'));
  await chmod(dataDir, 0o755);
  port = await freePort();
});
afterAll(async () => {
  easel?.child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

describe('easel start with no configuration', () => {
  it('brings up embedded PostgreSQL and the API; generate saves an image with progress; Ctrl-C stops everything', async () => {
    easel = await startEasel();
    const out = path.join(dataDir, 'out');
    const generated = await cli(
      'generate',
      'a lighthouse at dusk',
      '--seed',
      '7',
      '--width',
      '64',
      '--height',
      '64',
      '--steps',
      '4',
      '--out',
      out,
    );
    const files = await readdir(out);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^[0-9a-f-]{36}-0\.png$/);
    expect((await readFile(path.join(out, files[0]!))).subarray(1, 4).toString()).toBe('PNG');
    expect(generated.stdout).toContain('64x64 seed 7');
    expect(generated.stderr).toMatch(/queued/);
    expect(generated.stderr).toMatch(/succeeded/);

    // No EASEL_SECRET_KEY and the embedded database: a key file is generated, 0600, and logged.
    const keyFile = path.join(dataDir, 'secret.key');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(easel.output()).toContain('generated a key for provider secrets');
    expect(easel.output()).toContain(keyFile);
    const added = await cli('credentials', 'add', 'replicate', '--from-env', 'E2E_TOKEN').catch(
      (error: Error) => error,
    );
    expect(added).not.toBeInstanceOf(Error);

    const taskId = files[0]!.slice(0, 36);
    expect((await cli('tasks', 'ls')).stdout).toContain(taskId);
    expect(JSON.parse((await cli('tasks', 'show', taskId)).stdout)).toMatchObject({ id: taskId, status: 'succeeded' });
    expect((await cli('queue', 'status')).stdout).toMatch(/workers: 1 live/);
    await expect(cli('tasks', 'cancel', taskId)).rejects.toMatchObject({
      stderr: expect.stringContaining('TASK_NOT_CANCELABLE'),
    });

    const pid = await postmasterPid();
    expect(isAlive(pid)).toBe(true);
    easel.child.kill('SIGINT');
    expect(await easel.exited).toBe(0);
    expect(isAlive(pid)).toBe(false);
  }, 120_000);

  it('leaves no PostgreSQL behind when the process is SIGKILLed, and restarts on the same data', async () => {
    easel = await startEasel();
    const pid = await postmasterPid();
    easel.child.kill('SIGKILL');
    await easel.exited;
    await eventually('the orphaned postgres to exit', async () => !isAlive(pid), 15_000);

    easel = await startEasel();
    const listed = await cli('tasks', 'ls', '--status', 'succeeded');
    expect(listed.stdout.trim().split('\n')).toHaveLength(1);
    easel.child.kill('SIGTERM');
    expect(await easel.exited).toBe(0);
  }, 120_000);

  it('reports an unreachable server and a bad argument clearly', async () => {
    await expect(cli('tasks', 'ls')).rejects.toMatchObject({ stderr: expect.stringMatching(/cannot reach Easel at/) });
    await expect(cli('generate', 'x', '--width', 'wide')).rejects.toMatchObject({
      stderr: expect.stringMatching(/not a whole number/),
    });
  });
});
