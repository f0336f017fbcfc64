import path from 'node:path';
import type { StorageConfig } from '../config/storage.js';
import { createLocalStorage } from './local.js';
import { createS3Storage } from './s3.js';
import type { Storage } from './storage.js';

/**
 * The driver EASEL_STORAGE chose; the local folder is `<data dir>/images`. Every process that
 * touches objects opens storage here, servers and `easel storage gc` alike, so gc always looks
 * at the objects the servers wrote.
 */
export function createStorage(config: StorageConfig, dataDir: string): Storage {
  return config.driver === 's3' ? createS3Storage(config) : createLocalStorage(path.join(dataDir, 'images'));
}
