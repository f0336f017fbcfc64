import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

export const S3_TEST_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const S3_TEST_REGION = 'us-east-1';

/**
 * A real S3-protocol server on loopback: s3rver 3.7 in a temp folder, behind a small front of
 * ours. s3rver checks no signatures and ignores expiry, so the front does what S3 does for
 * presigned URLs: it recomputes the SigV4 query signature with the known keys and refuses a
 * wrong one or one past X-Amz-Date + X-Amz-Expires (403, as S3 answers). It can also go down
 * (every connection reset), like a store that disappears mid-run, and come back on the same port.
 */
export interface TestS3 {
  /** The front's URL: what S3_ENDPOINT points at. */
  endpoint: string;
  bucket: string;
  /** Environment for an Easel that stores into this bucket. */
  env: Record<string, string>;
  /** The bytes s3rver wrote for a key, straight from its folder (no S3 request involved). */
  storedBytes(key: string): Promise<Buffer>;
  /** false: every connection to the front is reset, as if the store went away. */
  setAvailable(available: boolean): void;
  /** Presigned requests the front checked, by verdict. */
  presignChecks: { valid: number; refused: number };
  close(): Promise<void>;
}

export async function startTestS3(options: { bucket?: string; createBucket?: boolean } = {}): Promise<TestS3> {
  const bucket = options.bucket ?? 'easel-test';
  const directory = await mkdtemp(path.join(os.tmpdir(), 'easel-s3rver-'));
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory,
    silent: true,
    configureBuckets: options.createBucket === false ? [] : [{ name: bucket }],
  });
  const backend = await s3rver.run();
  let available = true;
  const presignChecks = { valid: 0, refused: 0 };

  const front = http.createServer((request, response) => {
    if (!available) {
      request.socket.destroy();
      return;
    }
    const url = new URL(request.url ?? '/', 'http://front');
    if (url.searchParams.has('X-Amz-Signature')) {
      const refusal = checkPresigned(request, url);
      if (refusal) {
        presignChecks.refused++;
        response.writeHead(403, { 'content-type': 'application/xml' });
        response.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message></Error>`,
        );
        return;
      }
      presignChecks.valid++;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: backend.port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;

  return {
    endpoint,
    bucket,
    env: {
      EASEL_STORAGE: 's3',
      S3_ENDPOINT: endpoint,
      S3_REGION: S3_TEST_REGION,
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: S3_TEST_KEYS.accessKeyId,
      S3_SECRET_ACCESS_KEY: S3_TEST_KEYS.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    },
    storedBytes: (key) => readFile(path.join(directory, bucket, `${key}._S3rver_object`)),
    setAvailable(value) {
      available = value;
      // Kept-alive sockets would otherwise carry on as if nothing happened.
      if (!value) front.closeAllConnections();
    },
    presignChecks,
    async close() {
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await s3rver.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const encode = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/**
 * SigV4 with query parameters (the AWS "Authenticating Requests: Using Query Parameters"
 * algorithm), recomputed independently of the SDK that signed: canonical request, string to
 * sign, derived key. Undefined when the URL is valid now.
 */
function checkPresigned(request: http.IncomingMessage, url: URL): { code: string; message: string } | undefined {
  const q = url.searchParams;
  const amzDate = q.get('X-Amz-Date') ?? '';
  const expires = Number(q.get('X-Amz-Expires'));
  const credential = q.get('X-Amz-Credential') ?? '';
  const [accessKey, ...scopeParts] = credential.split('/');
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || accessKey !== S3_TEST_KEYS.accessKeyId) {
    return { code: 'InvalidAccessKeyId', message: 'unknown access key or algorithm' };
  }
  const signedAt = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!Number.isFinite(signedAt) || !Number.isInteger(expires) || expires < 1 || expires > 604800) {
    return { code: 'AuthorizationQueryParametersError', message: 'bad X-Amz-Date or X-Amz-Expires' };
  }
  if (Date.now() > signedAt + expires * 1000) return { code: 'AccessDenied', message: 'Request has expired' };

  const signedHeaders = (q.get('X-Amz-SignedHeaders') ?? '').split(';');
  const canonicalQuery = [...q.entries()]
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [encode(name), encode(value)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalHeaders = signedHeaders
    .map(
      (name) =>
        `${name}:${String(request.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const payload = q.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [
    request.method,
    url.pathname,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders.join(';'),
    payload,
  ].join('\n');
  const scope = scopeParts.join('/');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const [day, region, service] = scopeParts;
  let key = hmac(`AWS4${S3_TEST_KEYS.secretAccessKey}`, day ?? '');
  key = hmac(key, region ?? '');
  key = hmac(key, service ?? '');
  key = hmac(key, 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign).digest('hex');
  if (expected !== q.get('X-Amz-Signature')) {
    return { code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match' };
  }
  return undefined;
}
