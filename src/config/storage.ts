import { ConfigError, readChoice, readInt, readUrl, type Env } from './env.js';

/** Where image bytes live (src/storage/*); docs/storage.md describes each setting. */
export type StorageConfig = LocalStorageConfig | S3StorageConfig;

export interface LocalStorageConfig {
  driver: 'local';
}

export interface S3StorageConfig {
  driver: 's3';
  /** Undefined = AWS S3's own endpoint for the region. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  /** Undefined = the AWS SDK's default chain (environment, profile, instance role). */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** `http://host/bucket/key` rather than `http://bucket.host/key`: MinIO and most self-hosted stores. */
  forcePathStyle: boolean;
  /** A public bucket's base URL: image URLs become `<base>/<key>` instead of presigned ones. */
  publicBaseUrl: string | undefined;
  /** S3_CREATE_BUCKET: make the bucket at start when it is missing. */
  createBucket: boolean;
}

/** How image URLs are handed out: presigned lifetime, and the HMAC-signed URLs that need no key. */
export interface ImageUrlConfig {
  /** EASEL_PRESIGN_SECONDS: lifetime of a presigned GET URL the image route redirects to. */
  presignSeconds: number;
  /** EASEL_SIGNED_URL_SECONDS: lifetime of the `signed_url` in task answers. */
  signedUrlSeconds: number;
  /** EASEL_URL_SIGNING_KEY; undefined = derived from the secret key, when there is one. */
  signingKey: Buffer | undefined;
}

const DAY = 24 * 3600;

export function readImageUrlConfig(env: Env): ImageUrlConfig {
  const rawKey = env.EASEL_URL_SIGNING_KEY?.trim();
  if (rawKey !== undefined && rawKey !== '' && rawKey.length < 32) {
    // Never echo the value: it is a secret.
    throw new ConfigError(
      `EASEL_URL_SIGNING_KEY is too short (${rawKey.length} characters): use at least 32 random characters, e.g. \`openssl rand -hex 32\``,
    );
  }
  return {
    // SigV4 presigned URLs live at most 7 days.
    presignSeconds: readInt(env, 'EASEL_PRESIGN_SECONDS', 3600, { min: 1, max: 7 * DAY }),
    signedUrlSeconds: readInt(env, 'EASEL_SIGNED_URL_SECONDS', DAY, { min: 1, max: 365 * DAY }),
    signingKey: rawKey ? Buffer.from(rawKey, 'utf8') : undefined,
  };
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * EASEL_STORAGE=local|s3 and the S3_* variables. The MINIO_* variables that existing MinIO
 * deployments already have select s3 with path-style addressing on their own; S3_* win where
 * both are set.
 */
export function readStorageConfig(env: Env): StorageConfig {
  const minio = readMinio(env);
  const fallback = minio ? 's3' : 'local';
  const driver = readChoice(env, 'EASEL_STORAGE', fallback, ['local', 's3']);
  if (driver === 'local') return { driver: 'local' };

  const endpoint = readUrl(env, 'S3_ENDPOINT', ['http:', 'https:'])?.replace(/\/+$/, '') ?? minio?.endpoint;
  const bucket = value(env, 'S3_BUCKET') ?? minio?.bucket;
  if (!bucket) {
    throw new ConfigError(
      'EASEL_STORAGE=s3 needs a bucket: set S3_BUCKET (or MINIO_BUCKET_NAME for an existing MinIO set-up)',
    );
  }
  if (!BUCKET_NAME.test(bucket)) {
    throw new ConfigError(
      `S3_BUCKET=${JSON.stringify(bucket)} is not a valid bucket name: 3 to 63 lower-case letters, digits, dots and hyphens`,
    );
  }
  const accessKeyId = value(env, 'S3_ACCESS_KEY_ID') ?? minio?.accessKey;
  const secretAccessKey = value(env, 'S3_SECRET_ACCESS_KEY') ?? minio?.secretKey;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ConfigError(
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both, or neither to use the AWS default credential chain',
    );
  }
  const pathStyleDefault = minio || endpoint !== undefined ? 'true' : 'false';
  return {
    driver: 's3',
    endpoint,
    // R2 wants `auto`; MinIO accepts anything; AWS needs the bucket's region.
    region: value(env, 'S3_REGION') ?? 'us-east-1',
    bucket,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    forcePathStyle: readChoice(env, 'S3_FORCE_PATH_STYLE', pathStyleDefault, ['true', 'false']) === 'true',
    publicBaseUrl: readUrl(env, 'S3_PUBLIC_BASE_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    createBucket: readChoice(env, 'S3_CREATE_BUCKET', 'true', ['true', 'false']) === 'true',
  };
}

interface MinioSettings {
  endpoint: string;
  bucket: string | undefined;
  accessKey: string | undefined;
  secretKey: string | undefined;
}

/** MINIO_ENDPOINT is `host:port` (no scheme); MINIO_USE_SSL or MINIO_SECURE picks https. */
function readMinio(env: Env): MinioSettings | undefined {
  const hostPort = value(env, 'MINIO_ENDPOINT');
  if (hostPort === undefined) return undefined;
  let endpoint: string;
  if (/^https?:\/\//i.test(hostPort)) {
    // Some deployments put a URL here; take it as it is rather than refuse.
    endpoint = hostPort.replace(/\/+$/, '');
  } else {
    const sslName = value(env, 'MINIO_USE_SSL') !== undefined ? 'MINIO_USE_SSL' : 'MINIO_SECURE';
    const ssl = readBoolean(env, sslName, false);
    endpoint = `${ssl ? 'https' : 'http'}://${hostPort}`;
  }
  try {
    const url = new URL(endpoint);
    if (url.pathname !== '/' || url.search) throw new Error('path');
  } catch {
    throw new ConfigError(
      `MINIO_ENDPOINT=${JSON.stringify(hostPort)} is not valid: expected host:port such as minio:9000`,
    );
  }
  return {
    endpoint,
    bucket: value(env, 'MINIO_BUCKET_NAME') ?? value(env, 'MINIO_BUCKET'),
    accessKey: value(env, 'MINIO_ACCESS_KEY'),
    secretKey: value(env, 'MINIO_SECRET_KEY'),
  };
}

/** Python and Go MinIO set-ups write True/False/1/0; accept those spellings. */
function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const lower = raw.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(lower)) return true;
  if (['false', '0', 'no', 'off'].includes(lower)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected true or false`);
}

function value(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw ? raw : undefined;
}
