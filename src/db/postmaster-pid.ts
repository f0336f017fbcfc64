import { readFile, readlink, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { isPostgresProcess } from './process-liveness.js';

export interface Postmaster {
  pid: number;
  port: number;
}

/** postmaster.pid: line 1 is the PID, line 4 the port. */
async function readPidFile(dataDir: string): Promise<Postmaster | undefined> {
  try {
    const lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    return { pid: Number(lines[0]), port: Number(lines[3]) };
  } catch {
    return undefined;
  }
}

/**
 * The live postmaster that `dataDir/postmaster.pid` names, if that process is a postgres serving
 * this data directory. A postmaster's working directory is its data directory; where /proc shows
 * it (Linux) a postgres with another working directory is a reused PID (after a reboot, say), not
 * our server. Paths are compared after resolving symlinks, so two spellings of one directory match.
 */
export async function runningPostmaster(dataDir: string): Promise<Postmaster | undefined> {
  const recorded = await readPidFile(dataDir);
  if (!recorded || !isPostgresProcess(recorded.pid)) return undefined;
  const cwd = await readlink(`/proc/${recorded.pid}/cwd`).catch(() => undefined);
  if (cwd !== undefined && !(await sameDirectory(cwd, dataDir))) return undefined;
  return recorded;
}

export async function sameDirectory(a: string, b: string): Promise<boolean> {
  const [ra, rb] = await Promise.all([
    realpath(a).catch(() => path.resolve(a)),
    realpath(b).catch(() => path.resolve(b)),
  ]);
  return ra === rb;
}

/**
 * Removes a postmaster.pid whose server is gone, so that postgres starts (it refuses while the
 * PID in the file is alive, even when a reused PID belongs to something else). Call it under the
 * start lock, and only after failing to adopt: it checks once more and never removes the file of
 * a live server on this data directory (postgres would shut itself down on finding it gone).
 */
export async function removeStalePidFile(dataDir: string, log: Logger): Promise<void> {
  const recorded = await readPidFile(dataDir);
  if (!recorded) return;
  if (await runningPostmaster(dataDir)) {
    throw new Error(
      `postgres (pid ${recorded.pid}) is running on ${dataDir}; stop it, or let Easel adopt it by starting no other server there`,
    );
  }
  log.warn({ postgresPid: recorded.pid }, 'removing stale postmaster.pid left by a server that is gone');
  await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
}
