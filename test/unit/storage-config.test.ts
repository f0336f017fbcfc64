import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { readImageUrlConfig, readStorageConfig } from '../../src/config/storage.js';
import { loadConfig } from '../../src/config/config.js';

describe('readStorageConfig', () => {
  it('is the local folder by default', () => {
    expect(readStorageConfig({})).toEqual({ driver: 'local' });
    expect(loadConfig({}).storage).toEqual({ driver: 'local' });
  });

  it('reads the S3_* variables; an endpoint means path style unless told otherwise', () => {
    expect(
      readStorageConfig({
        EASEL_STORAGE: 's3',
        S3_ENDPOINT: 'https://acct.r2.cloudflarestorage.com/',
        S3_REGION: 'auto',
        S3_BUCKET: 'images',
        S3_ACCESS_KEY_ID: 'AK',
        S3_SECRET_ACCESS_KEY: 'SK',
        S3_PUBLIC_BASE_URL: 'https://img.example.com/',
      }),
    ).toEqual({
      driver: 's3',
      endpoint: 'https://acct.r2.cloudflarestorage.com',
      region: 'auto',
      bucket: 'images',
      credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
      forcePathStyle: true,
      publicBaseUrl: 'https://img.example.com',
      createBucket: true,
    });
  });

  it('AWS S3 without an endpoint: virtual-hosted style and the default credential chain', () => {
    const config = readStorageConfig({ EASEL_STORAGE: 's3', S3_BUCKET: 'my-images', S3_REGION: 'eu-west-1' });
    expect(config).toMatchObject({ endpoint: undefined, forcePathStyle: false, credentials: undefined });
  });

  it('MINIO_* alone select s3 with path style; USE_SSL or SECURE pick https', () => {
    const minio = {
      MINIO_ENDPOINT: 'minio:9000',
      MINIO_ACCESS_KEY: 'minioadmin',
      MINIO_SECRET_KEY: 'minio-secret',
      MINIO_BUCKET_NAME: 'generated',
    };
    expect(readStorageConfig(minio)).toMatchObject({
      driver: 's3',
      endpoint: 'http://minio:9000',
      bucket: 'generated',
      credentials: { accessKeyId: 'minioadmin', secretAccessKey: 'minio-secret' },
      forcePathStyle: true,
    });
    expect(readStorageConfig({ ...minio, MINIO_USE_SSL: 'true' })).toMatchObject({ endpoint: 'https://minio:9000' });
    expect(readStorageConfig({ ...minio, MINIO_SECURE: 'True' })).toMatchObject({ endpoint: 'https://minio:9000' });
    const { MINIO_BUCKET_NAME: _, ...withoutName } = minio;
    expect(readStorageConfig({ ...withoutName, MINIO_BUCKET: 'other' })).toMatchObject({ bucket: 'other' });
    // S3_* win over MINIO_*; EASEL_STORAGE=local still wins over both.
    expect(readStorageConfig({ ...minio, S3_BUCKET: 'override' })).toMatchObject({ bucket: 'override' });
    expect(readStorageConfig({ ...minio, EASEL_STORAGE: 'local' })).toEqual({ driver: 'local' });
  });

  it('refuses what cannot work, naming the variable', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ EASEL_STORAGE: 'gcs' }, /EASEL_STORAGE.*local, s3/],
      [{ EASEL_STORAGE: 's3' }, /needs a bucket: set S3_BUCKET/],
      [{ EASEL_STORAGE: 's3', S3_BUCKET: 'Bad_Name' }, /S3_BUCKET="Bad_Name" is not a valid bucket name/],
      [{ EASEL_STORAGE: 's3', S3_BUCKET: 'ok-bucket', S3_ACCESS_KEY_ID: 'AK' }, /go together/],
      [
        { EASEL_STORAGE: 's3', S3_BUCKET: 'ok-bucket', S3_ENDPOINT: 'minio:9000' },
        /S3_ENDPOINT must use http: or https:/,
      ],
      [{ EASEL_STORAGE: 's3', S3_BUCKET: 'ok-bucket', S3_FORCE_PATH_STYLE: 'yes' }, /S3_FORCE_PATH_STYLE/],
      [{ MINIO_ENDPOINT: 'minio:9000/path', MINIO_BUCKET: 'b-1' }, /MINIO_ENDPOINT="minio:9000\/path" is not valid/],
      [{ MINIO_ENDPOINT: 'minio:9000', MINIO_BUCKET: 'b-1', MINIO_USE_SSL: 'maybe' }, /MINIO_USE_SSL/],
    ];
    for (const [env, message] of bad) expect(() => readStorageConfig(env), JSON.stringify(env)).toThrow(message);
    expect(() => readStorageConfig({ EASEL_STORAGE: 's3' })).toThrow(ConfigError);
  });
});

describe('readImageUrlConfig', () => {
  it('has defaults and bounds', () => {
    expect(readImageUrlConfig({})).toEqual({ presignSeconds: 3600, signedUrlSeconds: 86400, signingKey: undefined });
    expect(() => readImageUrlConfig({ EASEL_PRESIGN_SECONDS: String(8 * 86400) })).toThrow(/EASEL_PRESIGN_SECONDS/);
    expect(() => readImageUrlConfig({ EASEL_SIGNED_URL_SECONDS: '0' })).toThrow(/EASEL_SIGNED_URL_SECONDS/);
  });

  it('takes a signing key of 32 characters or more, and never echoes a short one', () => {
    const key = 'k'.repeat(40);
    expect(readImageUrlConfig({ EASEL_URL_SIGNING_KEY: key }).signingKey).toEqual(Buffer.from(key));
    const short = 'short-secret-value';
    expect(() => readImageUrlConfig({ EASEL_URL_SIGNING_KEY: short })).toThrow(/too short \(18 characters\)/);
    try {
      readImageUrlConfig({ EASEL_URL_SIGNING_KEY: short });
    } catch (error) {
      expect((error as Error).message).not.toContain(short);
    }
  });
});
