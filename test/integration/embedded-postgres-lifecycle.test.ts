import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { removeStalePidFile } from '../../src/db/postmaster-pid.js';
import { queryOnce } from '../helpers/database.js';
import { testLogger } from '../helpers/easel.js';
import { eventually, isAlive } from '../helpers/processes.js';

const OWNER_SCRIPT = fileURLToPath(new URL('../helpers/embedded-postgres-owner.ts', import.meta.url));

let root: string;
let cleanups: Array<() => Promise<unknown> | unknown> = [];
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'easel-pg-lifecycle-'));
  await chmod(root, 0o755);
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Started here and stopped after the test, whatever happens in it. */
async function started(options: Parameters<typeof startEmbeddedPostgres>[0]): Promise<EmbeddedPostgres> {
  const server = await startEmbeddedPostgres(options);
  cleanups.push(() => server.stop());
  return server;
}

const postmasterPid = (dataDir: string) =>
  Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

/** Dead, or a zombie nobody has reaped yet (it holds no port, files or memory). */
function isGone(pid: number): boolean {
  if (!isAlive(pid)) return true;
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function killIfAlive(pid: number) {
  if (!isGone(pid)) process.kill(pid, 'SIGKILL');
}

/** PIDs of the processes whose command line contains every one of `parts`. */
function processesWith(...parts: string[]): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return parts.every((part) => cmdline.includes(part));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** An Easel-like process of its own that starts (or adopts) the server on `dataDir`. */
async function spawnOwner(dataDir: string): Promise<{ child: ChildProcess; port: number; owned: boolean }> {
  const child = spawn(process.execPath, ['--import', 'tsx/esm', OWNER_SCRIPT, dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const line = output.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve({ child, ...(JSON.parse(line) as { port: number; owned: boolean }) });
    });
    child.once('exit', (code) => reject(new Error(`owner process exited (${code}):\n${output}`)));
  });
}

describe('embedded PostgreSQL lifecycle', () => {
  it('stop() kills a postmaster that cannot act on the fast-shutdown request', async () => {
    const dataDir = path.join(root, 'hung', 'postgres');
    const server = await started({ dataDir, log: testLogger() });
    const pid = postmasterPid(dataDir);
    cleanups.push(() => killIfAlive(pid));
    process.kill(pid, 'SIGSTOP'); // it cannot handle SIGINT or SIGQUIT now; only SIGKILL works
    await server.stop();
    expect(isGone(pid), `postmaster ${pid} outlived stop()`).toBe(true);
  }, 30_000);

  it('two starts at once on a fresh data directory: one initdb, one server, both usable', async () => {
    const dataDir = path.join(root, 'race', 'postgres');
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const results = await Promise.allSettled([started({ dataDir, log }), started({ dataDir, log })]);
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
    expect(failures, lines.join('')).toEqual([]);
    const [a, b] = results.map((r) => (r as PromiseFulfilledResult<EmbeddedPostgres>).value) as [
      EmbeddedPostgres,
      EmbeddedPostgres,
    ];
    expect([a.owned, b.owned].sort()).toEqual([false, true]);
    expect(a.port).toBe(b.port);
    expect(lines.filter((line) => line.includes('initialising embedded PostgreSQL')).length).toBe(1);
    expect(await queryOnce(a.connectionString, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(await queryOnce(b.connectionString, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  }, 60_000);

  it('adopts a server reached through another path to its data directory, and leaves its postmaster.pid alone', async () => {
    await mkdir(path.join(root, 'real'));
    await symlink(path.join(root, 'real'), path.join(root, 'link'));
    const owner = await started({ dataDir: path.join(root, 'link', 'postgres'), log: testLogger() });
    const other = await started({ dataDir: path.join(root, 'real', 'postgres'), log: testLogger() });
    expect(other).toMatchObject({ owned: false, port: owner.port });
    expect(existsSync(path.join(root, 'real', 'postgres', 'postmaster.pid'))).toBe(true);
    expect(await queryOnce(owner.connectionString, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  }, 60_000);

  it('restarts on the port it used before', async () => {
    const dataDir = path.join(root, 'port', 'postgres');
    const first = await startEmbeddedPostgres({ dataDir, log: testLogger() });
    await first.stop();
    const second = await started({ dataDir, log: testLogger() });
    expect(second.port).toBe(first.port);
  }, 60_000);

  it('an adopter takes the server over when its owner is killed, on the same port', async () => {
    const dataDir = path.join(root, 'takeover', 'postgres');
    const owner = await spawnOwner(dataDir);
    expect(owner.owned).toBe(true);
    const firstPid = postmasterPid(dataDir);
    cleanups.push(() => killIfAlive(firstPid));
    const adopter = await started({ dataDir, log: testLogger() });
    expect(adopter).toMatchObject({ owned: false, port: owner.port });
    await queryOnce(adopter.connectionString, 'CREATE TABLE survives (v int); INSERT INTO survives VALUES (7)');

    owner.child.kill('SIGKILL'); // its guard stops the server; nobody runs it now but the adopter
    await eventually('the first postmaster to stop', async () => isGone(firstPid), 20_000);
    const rows = await eventually(
      'the adopter to bring the server back',
      async () => queryOnce(adopter.connectionString, 'SELECT v FROM survives').catch(() => undefined),
      20_000,
      200,
    );
    expect(rows).toEqual([{ v: 7 }]);
    expect(adopter.owned).toBe(true);
    const secondPid = postmasterPid(dataDir);
    expect(secondPid).not.toBe(firstPid);
    await adopter.stop();
    expect(isGone(secondPid)).toBe(true);
  }, 60_000);

  it('an owner whose postmaster dies starts it again on the same port', async () => {
    const dataDir = path.join(root, 'crashed', 'postgres');
    const server = await started({ dataDir, log: testLogger() });
    const firstPid = postmasterPid(dataDir);
    process.kill(firstPid, 'SIGKILL');
    const rows = await eventually(
      'the owner to start the server again',
      async () => queryOnce(server.connectionString, 'SELECT 1 AS one').catch(() => undefined),
      30_000,
      200,
    );
    expect(rows).toEqual([{ one: 1 }]);
    expect(server.owned).toBe(true);
    expect(postmasterPid(dataDir)).not.toBe(firstPid);
  }, 60_000);

  it('an adopter that stops first leaves the owner running', async () => {
    const dataDir = path.join(root, 'quiet', 'postgres');
    const owner = await started({ dataDir, log: testLogger() });
    const adopter = await startEmbeddedPostgres({ dataDir, log: testLogger() });
    await adopter.stop();
    expect(owner.owned).toBe(true);
    expect(await queryOnce(owner.connectionString, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).toContain(String(owner.port));
  }, 60_000);

  it('never removes the postmaster.pid of a live server, but does remove one whose PID another postgres reuses', async () => {
    const live = path.join(root, 'live', 'postgres');
    await started({ dataDir: live, log: testLogger() });
    await expect(removeStalePidFile(live, testLogger())).rejects.toThrow(/is running on/);
    expect(existsSync(path.join(live, 'postmaster.pid'))).toBe(true);

    // After a reboot the PID in a stale postmaster.pid may belong to some other postgres.
    const stale = path.join(root, 'stale', 'postgres');
    await mkdir(stale, { recursive: true });
    await writeFile(path.join(stale, 'postmaster.pid'), `${postmasterPid(live)}\n${stale}\n0\n5432\n`);
    await removeStalePidFile(stale, testLogger());
    expect(existsSync(path.join(stale, 'postmaster.pid'))).toBe(false);
  }, 60_000);

  // The initdb is killed in another process: in this one execFileSync would block the test's polling.
  it.runIf(existsSync('/proc/self/cmdline'))(
    'a first start whose initdb was killed half-way leaves nothing that breaks the next start',
    async () => {
      const parent = path.join(root, 'initdb-killed');
      const dataDir = path.join(parent, 'postgres');
      const owner = spawnOwner(dataDir);
      owner.catch(() => undefined);
      const initdb = await eventually(
        'initdb to have written PG_VERSION',
        async () => {
          const written = [dataDir, `${dataDir}.initdb`].some((dir) => existsSync(path.join(dir, 'PG_VERSION')));
          return written && processesWith('initdb', `--pgdata=${parent}`)[0];
        },
        30_000,
        5,
      );
      process.kill(initdb, 'SIGKILL');
      await expect(owner, 'the first start finished before initdb was killed').rejects.toThrow(/initdb failed/);

      const server = await started({ dataDir, log: testLogger() });
      expect(server.owned).toBe(true);
      expect(await queryOnce(server.connectionString, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(readdirSync(parent).filter((name) => name.includes('initdb'))).toEqual([]);
    },
    60_000,
  );
});
