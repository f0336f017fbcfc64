import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDirectories } from '../fs/make-directories.js';
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
