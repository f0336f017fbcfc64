import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * `mkdir -p`, one level at a time. Node's `mkdir({ recursive: true })` retries the parent
 * whenever a level answers ENOENT, and under /proc a level answers ENOENT although its parent
 * exists, so it loops forever on one core. Here each level is created once, and its error is final.
 */
export async function makeDirectories(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = dir; ; current = path.dirname(current)) {
    if (await isDirectory(current)) break;
    missing.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const level of missing) {
    await mkdir(level).catch((error: NodeJS.ErrnoException) => {
      // Another process made it meanwhile.
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
