import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalStorage } from '../../src/storage/local.js';
import { createS3Storage } from '../../src/storage/s3.js';
import { StorageUnavailableError, type Storage } from '../../src/storage/storage.js';
import { readStorageConfig, type S3StorageConfig } from '../../src/config/storage.js';
import { startTestS3, type TestS3 } from '../helpers/s3-server.js';

let s3: TestS3;
let folder: string;

beforeAll(async () => {
  s3 = await startTestS3();
  folder = await mkdtemp(path.join(os.tmpdir(), 'easel-local-storage-'));
});
afterAll(async () => {
  await s3?.close();
  await rm(folder, { recursive: true, force: true });
});

const s3Config = (overrides: Partial<S3StorageConfig> = {}): S3StorageConfig => ({
  ...(readStorageConfig(s3.env) as S3StorageConfig),
  ...overrides,
});

const readAll = async (body: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/** A stream in uneven chunks, as a converter or a download would hand it over. */
const chunked = (data: Buffer, size = 65_537) =>
  Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
    })(),
  );

const drivers: Array<[string, () => Storage]> = [
  ['local', () => createLocalStorage(folder)],
  ['s3', () => createS3Storage(s3Config())],
];

describe.each(drivers)('storage contract: %s', (driver, make) => {
  it('stores a buffer and reads the same bytes back; a missing key is undefined', async () => {
    const storage = make();
    await storage.check();
    const data = randomBytes(3000);
    await storage.put('tasks/ab/one-0.png', data, 'image/png');
    const got = await storage.get('tasks/ab/one-0.png');
    expect(got?.size).toBe(3000);
    expect((await readAll(got!.body)).equals(data)).toBe(true);
    expect(await storage.get('tasks/ab/nothing-here.png')).toBeUndefined();
  });

  it('stores a stream of uneven chunks, larger than one multipart part, byte for byte', async () => {
    const storage = make();
    // 9 MiB: more than one 8 MiB part, so S3 takes it as a multipart upload.
    const data = randomBytes(9 * 1024 * 1024 + 123);
    await storage.put('tasks/cd/big-0.png', chunked(data), 'image/png');
    const got = await storage.get('tasks/cd/big-0.png');
    expect(got?.size).toBe(data.length);
    expect((await readAll(got!.body)).equals(data)).toBe(true);
    if (driver === 's3') {
      // What the server wrote to disk, not what it echoes: no aws-chunked framing inside.
      expect((await s3.storedBytes('tasks/cd/big-0.png')).equals(data)).toBe(true);
    }
  }, 60_000);

  it('deletes (twice is fine) and lists by prefix across pages of folders', async () => {
    const storage = make();
    const keys = ['list/aa/x-1.png', 'list/aa/x-2.png', 'list/bb/y-1.png', 'lister/zz.png'];
    for (const key of keys) await storage.put(key, Buffer.from(key), 'image/png');
    const listed = async (prefix: string) => {
      const found: string[] = [];
      for await (const object of storage.list(prefix)) {
        expect(object.size).toBe(Buffer.byteLength(object.key));
        expect(object.modifiedAt.getTime()).toBeGreaterThan(Date.now() - 600_000);
        found.push(object.key);
      }
      return found.sort();
    };
    expect(await listed('list/')).toEqual(keys.slice(0, 3));
    expect(await listed('list/aa/')).toEqual(keys.slice(0, 2));
    await storage.delete('list/aa/x-1.png');
    await storage.delete('list/aa/x-1.png');
    expect(await storage.get('list/aa/x-1.png')).toBeUndefined();
    expect(await listed('list/')).toEqual(['list/aa/x-2.png', 'list/bb/y-1.png']);
  });

  it('refuses keys that would climb out of the root', async () => {
    const storage = make();
    await expect(storage.put('../escape.png', Buffer.from('x'), 'image/png')).rejects.toThrow(/unsafe storage key/);
  });

  it('a stream that fails half way leaves nothing under its key', async () => {
    const storage = make();
    const failing = Readable.from(
      (async function* () {
        yield randomBytes(1000);
        throw new Error('the converter broke');
      })(),
    );
    await expect(storage.put('tasks/ef/broken-0.png', failing, 'image/png')).rejects.toThrow();
    expect(await storage.get('tasks/ef/broken-0.png')).toBeUndefined();
  });
});

describe('s3 specifics', () => {
  it('presigned URLs work until they expire; a public base URL is used as is', async () => {
    const storage = createS3Storage(s3Config());
    await storage.put('tasks/pp/signed-0.png', Buffer.from('signed bytes'), 'image/png');
    // X-Amz-Date is in whole seconds, so a lifetime of 1 s could be over before the first fetch.
    const url = await storage.directUrl!('tasks/pp/signed-0.png', { expiresInSeconds: 3 });
    expect(url).toContain('X-Amz-Signature=');
    const first = await fetch(url!);
    expect(first.status).toBe(200);
    expect(await first.text()).toBe('signed bytes');
    const tampered = await fetch(url!.replace('signed-0', 'signed-1'));
    expect(tampered.status).toBe(403);
    await new Promise((resolve) => setTimeout(resolve, 4100));
    const late = await fetch(url!);
    expect(late.status).toBe(403);
    expect(await late.text()).toContain('Request has expired');

    const publicStorage = createS3Storage(s3Config({ publicBaseUrl: 'https://cdn.example.com/images' }));
    expect(await publicStorage.directUrl!('tasks/pp/signed-0.png', { expiresInSeconds: 60 })).toBe(
      'https://cdn.example.com/images/tasks/pp/signed-0.png',
    );
  });

  it('creates a missing bucket when allowed, and names endpoint and bucket when not', async () => {
    const refused = createS3Storage(s3Config({ bucket: 'not-there-yet', createBucket: false }));
    await expect(refused.check()).rejects.toThrow(
      new RegExp(`bucket "not-there-yet" at ${s3.endpoint}.* does not exist.*S3_CREATE_BUCKET=true`),
    );
    const creating = createS3Storage(s3Config({ bucket: 'not-there-yet', createBucket: true }));
    await creating.check();
    await creating.check();
    await refused.check();
  });

  it('an unreachable store is a StorageUnavailableError naming it, for every operation', async () => {
    const storage = createS3Storage(s3Config());
    s3.setAvailable(false);
    try {
      for (const attempt of [
        () => storage.check(),
        () => storage.put('tasks/zz/down-0.png', Buffer.from('x'), 'image/png'),
        () => storage.get('tasks/zz/down-0.png'),
      ]) {
        const error = await attempt().then(
          () => undefined,
          (failure: unknown) => failure,
        );
        expect(error).toBeInstanceOf(StorageUnavailableError);
        expect((error as Error).message).toContain(`bucket "${s3.bucket}" at ${s3.endpoint}`);
      }
    } finally {
      s3.setAvailable(true);
    }
    await storage.check();
  }, 30_000);
});
