import { createReadStream } from 'node:fs';
import { access, constants, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDirectories } from '../fs/make-directories.js';
import { assertSafeKey, type Storage } from './storage.js';

/** Images in a folder on this machine (`<data dir>/images` by default). */
export function createLocalStorage(root: string): Storage {
  const resolve = (key: string): string => {
    assertSafeKey(key);
    return path.join(root, key);
  };
  const madeDirectories = new Set<string>();
  return {
    driver: 'local',
    async put(key, data) {
      const target = resolve(key);
      const directory = path.dirname(target);
      if (!madeDirectories.has(directory)) {
        await makeDirectories(directory);
        madeDirectories.add(directory);
      }
      // Keys are never reused (they carry the attempt's lease), and a key is recorded only after
      // its bytes are written, so a reader never meets half an image: no temp file and rename.
      await writeFile(target, data);
    },
    async get(key) {
      const target = resolve(key);
      try {
        const info = await stat(target);
        return { body: createReadStream(target), size: info.size };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
    async delete(key) {
      try {
        await unlink(resolve(key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    },
    async check() {
      await makeDirectories(root);
      await access(root, constants.W_OK);
    },
  };
}
