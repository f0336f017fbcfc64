import path from 'node:path';
import type { StorageConfig } from '../config/storage.js';
import { createLocalStorage } from './local.js';
import type { Storage } from './storage.js';

/**
 * The driver EASEL_STORAGE chose; the local folder is `<data dir>/images`. Every process that
 * touches objects opens storage here, servers and `easel storage gc` alike, so gc always looks
 * at the objects the servers wrote. The S3 driver is loaded only when chosen: the AWS SDK adds
 * about a third of a second to every start of a process that never uses it.
 */
export async function createStorage(config: StorageConfig, dataDir: string): Promise<Storage> {
  if (config.driver !== 's3') return createLocalStorage(path.join(dataDir, 'images'));
  const { createS3Storage } = await import('./s3.js');
  return createS3Storage(config);
}
