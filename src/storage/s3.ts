import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3StorageConfig } from '../config/storage.js';
import { assertSafeKey, StorageUnavailableError, type Storage, type StoredObject } from './storage.js';

/** Parts of a streamed upload; S3's minimum part size is 5 MiB. */
const PART_BYTES = 8 * 1024 * 1024;

/**
 * Images in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...), shared by every Easel
 * process that points at it: an API on one machine serves what a worker on another stored.
 */
export function createS3Storage(config: S3StorageConfig): Storage {
  const client = new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle,
    ...(config.credentials ? { credentials: config.credentials } : {}),
    // The SDK's default CRC32 checksums (and the aws-chunked uploads that carry them) are
    // refused or stored verbatim by several S3-compatible stores; send them only when an
    // operation requires one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A store that does not answer must fail an attempt (which is retried), not hang it.
    requestHandler: { connectionTimeout: 5000, requestTimeout: 60_000 },
    maxAttempts: 3,
  });
  const Bucket = config.bucket;
  const where = `bucket ${JSON.stringify(Bucket)} at ${config.endpoint ?? `AWS S3 (${config.region})`}`;
  const unavailable = (what: string, error: unknown) =>
    new StorageUnavailableError(`${what} failed on ${where}: ${describe(error)}`, { cause: error });

  return {
    driver: 's3',
    async put(key, data, contentType) {
      assertSafeKey(key);
      try {
        if (Buffer.isBuffer(data)) {
          await client.send(
            new PutObjectCommand({
              Bucket,
              Key: key,
              Body: data,
              ContentType: contentType,
              ContentLength: data.length,
            }),
          );
          return;
        }
        // Multipart in parts of known length: never buffered whole, and on failure the upload
        // is aborted (leavePartsOnError false), so no half object ever becomes visible.
        await new Upload({
          client,
          params: { Bucket, Key: key, Body: data, ContentType: contentType },
          partSize: PART_BYTES,
          queueSize: 2,
          leavePartsOnError: false,
        }).done();
      } catch (error) {
        if (data instanceof Readable && !data.destroyed) data.destroy();
        throw unavailable(`storing ${key}`, error);
      }
    },
    async get(key) {
      assertSafeKey(key);
      try {
        const answer = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        if (!answer.Body) return undefined;
        return { body: answer.Body as Readable, size: answer.ContentLength ?? 0 };
      } catch (error) {
        if (isMissingKey(error)) return undefined;
        throw unavailable(`reading ${key}`, error);
      }
    },
    async delete(key) {
      assertSafeKey(key);
      try {
        // S3 answers 204 for a key that does not exist: deleting twice is fine.
        await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
      } catch (error) {
        if (isMissingKey(error)) return;
        throw unavailable(`deleting ${key}`, error);
      }
    },
    list(prefix) {
      return listObjects(client, Bucket, prefix, unavailable);
    },
    async check() {
      try {
        await client.send(new HeadBucketCommand({ Bucket }));
        return;
      } catch (error) {
        if (!isMissingBucket(error)) {
          throw unavailable('checking the bucket', error);
        }
      }
      if (!config.createBucket) {
        throw new StorageUnavailableError(
          `${where} does not exist; create it, or set S3_CREATE_BUCKET=true to let Easel create it`,
        );
      }
      try {
        await client.send(new CreateBucketCommand({ Bucket }));
      } catch (error) {
        // Another process made it first: fine.
        if (error instanceof S3ServiceException && /BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(error.name)) {
          return;
        }
        throw unavailable('creating the missing bucket', error);
      }
    },
    async directUrl(key, { expiresInSeconds }) {
      assertSafeKey(key);
      if (config.publicBaseUrl) return `${config.publicBaseUrl}/${key}`;
      // Signed locally with the configured keys: no request to the store.
      return getSignedUrl(client, new GetObjectCommand({ Bucket, Key: key }), { expiresIn: expiresInSeconds });
    },
  };
}

async function* listObjects(
  client: S3Client,
  Bucket: string,
  prefix: string,
  unavailable: (what: string, error: unknown) => Error,
): AsyncGenerator<StoredObject> {
  let ContinuationToken: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }));
    } catch (error) {
      throw unavailable(`listing ${JSON.stringify(prefix)}`, error);
    }
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      yield { key: object.Key, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) };
    }
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
}

/** A missing key; a missing bucket is an outage, never "no such image". */
function isMissingKey(error: unknown): boolean {
  if (!(error instanceof S3ServiceException) || error.name === 'NoSuchBucket') return false;
  return error.name === 'NoSuchKey' || error.$metadata?.httpStatusCode === 404;
}

/** HEAD has no body, so a missing bucket is only a 404 (`NotFound`) there. */
function isMissingBucket(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === 'NoSuchBucket' || error.name === 'NotFound' || error.$metadata?.httpStatusCode === 404;
}

/** The store's own words when it answered, else the network error (refused, timed out, ...). */
function describe(error: unknown): string {
  if (error instanceof S3ServiceException) {
    return `${error.name} (HTTP ${error.$metadata?.httpStatusCode ?? '?'}): ${error.message}`;
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
