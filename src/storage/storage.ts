import type { Readable } from 'node:stream';

/** One stored object as a listing shows it (for gc: finding objects no row records). */
export interface StoredObject {
  key: string;
  size: number;
  modifiedAt: Date;
}

/**
 * Where image bytes live. Keys are relative paths like `tasks/<shard>/<id>-<lease>-0.png`; the
 * database records the key, the API serves the bytes at a stable URL whatever the driver.
 * Keys carry no user data and no prompt: only ids and random tokens.
 */
export interface Storage {
  readonly driver: 'local' | 's3';
  /**
   * Store an object whole. A stream is written as it arrives, not buffered whole. When put
   * fails, nothing readable is left under the key (or what is left is never recorded and gc
   * removes it), so callers record a key only after put resolved.
   */
  put(key: string, data: Buffer | Readable, contentType: string): Promise<void>;
  /** A stream of the object, or undefined when it does not exist. */
  get(key: string): Promise<{ body: Readable; size: number } | undefined>;
  /** Remove an object; a missing key is fine. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<StoredObject>;
  /** Cheap check used by /readyz and at start-up: throws with a message an operator can act on. */
  check(): Promise<void>;
  /**
   * A URL a client may fetch the object from directly: a public bucket URL, or a presigned one
   * that expires after `expiresInSeconds`. Undefined when the driver only serves bytes through
   * Easel (the local folder).
   */
  directUrl?(key: string, options: { expiresInSeconds: number }): Promise<string | undefined>;
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

/**
 * The store could not be reached or refused the operation (network, missing bucket, denied).
 * The worker treats it as a retryable attempt failure: the image is produced again later.
 */
export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError';
}
