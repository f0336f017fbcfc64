import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, opendir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { makeDirectories } from '../fs/make-directories.js';
import { assertSafeKey, type Storage, type StoredObject } from './storage.js';

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
      // A stream that fails half way leaves a partial file, removed here (or by gc if we die).
      if (Buffer.isBuffer(data)) return writeFile(target, data);
      try {
        await pipeline(data, createWriteStream(target));
      } catch (error) {
        await unlink(target).catch(() => undefined);
        throw error;
      }
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
    list(prefix) {
      return listFiles(root, prefix);
    },
    async check() {
      await makeDirectories(root);
      await access(root, constants.W_OK);
    },
  };
}

/** Files under `root` whose relative key starts with `prefix`; walks only the folders that can match. */
async function* listFiles(root: string, prefix: string): AsyncGenerator<StoredObject> {
  async function* walk(relative: string): AsyncGenerator<StoredObject> {
    let directory;
    try {
      directory = await opendir(path.join(root, relative));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for await (const entry of directory) {
      const key = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) yield* walk(key);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(path.join(root, key)).catch(() => undefined);
        if (info) yield { key, size: info.size, modifiedAt: info.mtime };
      }
    }
  }
  yield* walk('');
}
