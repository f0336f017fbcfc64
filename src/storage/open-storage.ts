import path from 'node:path';
import type { Config } from '../config/config.js';
import { createLocalStorage } from './local.js';
import type { Storage } from './storage.js';

/**
 * The storage the configuration names, for every process that touches objects: servers and
 * `easel storage gc` alike, so gc always looks at the same objects the servers wrote.
 */
export function openStorage(config: Pick<Config, 'dataDir'>): Storage {
  return createLocalStorage(path.join(config.dataDir, 'images'));
}
