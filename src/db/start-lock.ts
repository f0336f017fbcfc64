import { randomUUID } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { isProcessAlive } from './process-liveness.js';

const POLL_MS = 100;

/**
 * Runs `critical` while holding `<dataDir>.lock`, so that the processes (or calls) starting an
 * embedded server on one data directory do it one at a time: the first runs initdb and starts
 * the server, the others then find it running and adopt it.
 *
 * The lock is a file naming its holder's pid and a random token. It appears atomically with its
 * content (link(2) of a finished draft fails if the lock exists), so a reader never sees it
 * half-written. A holder that died without releasing it leaves a stale lock, recognised by its
 * dead pid and broken by the next process. Residual race, accepted: breaking moves the lock aside
 * and checks it is the stale one; if a live process took the lock within those microseconds it is
 * put back, which only fails if a third process took it in between too.
 * PIDs are per PID namespace: containers sharing one data directory need one namespace.
 */
export async function withStartLock<T>(
  dataDir: string,
  critical: () => Promise<T>,
  options: { log: Logger; timeoutMs?: number },
): Promise<T> {
  const lockFile = `${dataDir}.lock`;
  const token = `${process.pid}\n${randomUUID()}\n`;
  await acquire(lockFile, token, options.timeoutMs ?? 120_000, options.log);
  try {
    return await critical();
  } finally {
    // Only the holder removes its own lock; a stale one is broken by whoever finds it.
    if ((await readFile(lockFile, 'utf8').catch(() => undefined)) === token) await rm(lockFile, { force: true });
  }
}

async function acquire(lockFile: string, token: string, timeoutMs: number, log: Logger): Promise<void> {
  const draft = `${lockFile}.${process.pid}.${randomUUID()}`;
  await writeFile(draft, token, { mode: 0o600 });
  try {
    const deadline = Date.now() + timeoutMs;
    let waiting = false;
    for (;;) {
      try {
        await link(draft, lockFile);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const held = await readFile(lockFile, 'utf8').catch(() => undefined);
      if (held === undefined) continue; // released a moment ago
      const holder = Number(held.split('\n')[0]);
      if (!isProcessAlive(holder)) {
        log.warn({ lockFile, holderPid: holder }, 'breaking a start lock left by a process that is gone');
        await breakStaleLock(lockFile, held);
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${Math.round(timeoutMs / 1000)} s waiting for process ${holder} to start embedded PostgreSQL (lock ${lockFile})`,
        );
      }
      if (!waiting)
        log.debug({ lockFile, holderPid: holder }, 'waiting for another process to start embedded PostgreSQL');
      waiting = true;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    await rm(draft, { force: true });
  }
}

async function breakStaleLock(lockFile: string, staleContent: string): Promise<void> {
  const aside = `${lockFile}.stale.${process.pid}.${randomUUID()}`;
  try {
    await rename(lockFile, aside);
  } catch {
    return; // another process broke it first
  }
  const moved = await readFile(aside, 'utf8').catch(() => staleContent);
  if (moved !== staleContent) await link(aside, lockFile).catch(() => undefined); // a live lock: put it back
  await rm(aside, { force: true });
}
