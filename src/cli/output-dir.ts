import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserPathError } from './explain-error.js';

/**
 * Make sure `dir` exists and takes files before any work is asked for, so an unusable `--out`
 * fails in a moment instead of after the task ran: create it, write a probe file, remove it.
 * Throws a UserPathError naming `option`.
 */
export async function prepareOutputDir(dir: string, option = '--out'): Promise<void> {
  const absolute = path.resolve(dir);
  try {
    await makeDirectories(absolute);
    const probe = path.join(absolute, `.easel-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (error) {
    throw new UserPathError(option, dir, error);
  }
}

/**
 * `mkdir -p`, one level at a time. Node's `mkdir({ recursive: true })` retries the parent
 * whenever a level answers ENOENT, and under /proc a level answers ENOENT although its parent
 * exists, so it loops forever on one core. Here each level is created once, and its error is final.
 */
async function makeDirectories(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = dir; ; current = path.dirname(current)) {
    if (await isDirectory(current)) break;
    missing.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const level of missing) {
    await mkdir(level).catch((error: NodeJS.ErrnoException) => {
      // Someone else (another easel generate) made it meanwhile.
      if (error.code !== 'EEXIST') throw error;
    });
  }
}

/** Whether `dir` is a directory; false when nothing is there. A file there is left for mkdir to refuse. */
async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
