import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withStartLock } from '../../src/db/start-lock.js';

const log = pino({ level: 'silent' });
let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'easel-start-lock-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The PID of a process that has certainly exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid;

describe('the embedded PostgreSQL start lock', () => {
  it('runs concurrent holders one at a time and removes the lock afterwards', async () => {
    const dataDir = path.join(root, 'serial');
    const trace: string[] = [];
    const hold = (name: string) =>
      withStartLock(
        dataDir,
        async () => {
          trace.push(`${name} in`);
          await new Promise((resolve) => setTimeout(resolve, 150));
          trace.push(`${name} out`);
        },
        { log },
      );
    await Promise.all([hold('a'), hold('b'), hold('c')]);
    expect(trace).toHaveLength(6);
    // Each holder leaves before the next one enters.
    for (let i = 0; i < trace.length; i += 2) expect(trace[i + 1]).toBe(trace[i]!.replace(' in', ' out'));
    await expect(readFile(`${dataDir}.lock`)).rejects.toThrow(/ENOENT/);
  });

  it('breaks a lock whose holder is gone', async () => {
    const dataDir = path.join(root, 'stale');
    await writeFile(`${dataDir}.lock`, `${deadPid()}\nsome-token\n`);
    await expect(withStartLock(dataDir, async () => 'ran', { log })).resolves.toBe('ran');
  });

  it('waits for a live holder, and says who it waited for when it gives up', async () => {
    const dataDir = path.join(root, 'live');
    await writeFile(`${dataDir}.lock`, `${process.ppid}\nsome-token\n`);
    await expect(withStartLock(dataDir, async () => 'ran', { log, timeoutMs: 300 })).rejects.toThrow(
      new RegExp(`waiting for process ${process.ppid} .*${dataDir}\\.lock`),
    );
    expect(await readFile(`${dataDir}.lock`, 'utf8')).toContain('some-token'); // not broken
  });
});
