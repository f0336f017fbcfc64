import { createReadStream } from 'node:fs';
import { mkdir, rename, stat, writeFile, access, constants } from 'node:fs/promises';
import path from 'node:path';
import { assertSafeKey, type Storage } from './storage.js';

/** Images in a folder on this machine (`<data dir>/images` by default). */
export function createLocalStorage(root: string): Storage {
  const resolve = (key: string): string => {
    assertSafeKey(key);
    return path.join(root, key);
  };
  return {
    driver: 'local',
    async put(key, data) {
      const target = resolve(key);
      await mkdir(path.dirname(target), { recursive: true });
      // Write aside and rename, so a reader never sees half an image and a crash leaves none.
      const temporary = `${target}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(temporary, data);
      await rename(temporary, target);
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
    async check() {
      await mkdir(root, { recursive: true });
      await access(root, constants.W_OK);
    },
  };
}
