import type { Readable } from 'node:stream';

/**
 * Where image bytes live. Keys are relative paths like `tasks/<id>/<lease>-0.png`; the database
 * records the key, the API serves the bytes at a stable URL whatever the driver.
 */
export interface Storage {
  readonly driver: string;
  put(key: string, data: Buffer, contentType: string): Promise<void>;
  /** A stream of the object, or undefined when it does not exist. */
  get(key: string): Promise<{ body: Readable; size: number } | undefined>;
  /** Remove an object nobody will record (a discarded attempt's image); a missing key is fine. */
  delete(key: string): Promise<void>;
  /** Cheap check used by /readyz. */
  check(): Promise<void>;
}

export class StorageKeyError extends Error {
  override name = 'StorageKeyError';
}

/** Keys come from our own code, but a key must never climb out of its root. */
export function assertSafeKey(key: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key) || key.split('/').some((part) => part === '..' || part === '')) {
    throw new StorageKeyError(`unsafe storage key ${JSON.stringify(key)}`);
  }
}
