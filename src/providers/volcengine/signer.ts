import { createHash, createHmac } from 'node:crypto';

/**
 * Volcengine's V4 request signature (HMAC-SHA256), as the official docs ("签名机制", docs 6766/127937)
 * and SDKs (volc-sdk-python `auth/SignerV4.py`, volc-sdk-golang `base/sign.go`) compute it:
 *
 *   CanonicalRequest = METHOD \n path \n sorted-encoded-query \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
 *   StringToSign     = "HMAC-SHA256" \n X-Date \n YYYYMMDD/region/service/request \n hex(sha256(CanonicalRequest))
 *   key              = HMAC(HMAC(HMAC(HMAC(SK, YYYYMMDD), region), service), "request")
 *
 * Unlike AWS SigV4 the secret key is used as it is, with no prefix, and the scope ends in
 * `request`. We sign `content-type`, `host`, `x-content-sha256` and `x-date`, the set the Go
 * SDK and the official Python sample sign.
 */

export interface VolcengineKeys {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface SignInput {
  method: string;
  url: URL;
  /** The body exactly as it will be sent: the signature covers these bytes. */
  body: string;
  contentType: string;
  region: string;
  service: string;
  keys: VolcengineKeys;
  now?: Date;
}

const ALGORITHM = 'HMAC-SHA256';

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** `20250101T080000Z`: ISO 8601 basic format in UTC, seconds precision. */
export function formatXDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** RFC 3986 encoding: everything but unreserved characters, which `encodeURIComponent` leaves as `!'()*` too. */
function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Keys sorted by code unit (then values), each key and value encoded, joined `k=v&…`. */
export function canonicalQuery(params: URLSearchParams): string {
  return [...params.entries()]
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

/** The Host header a client sends for this URL: the default port is left out. */
function hostOf(url: URL): string {
  return url.host;
}

/**
 * The headers that authenticate the request: `X-Date`, `X-Content-Sha256`, `Authorization`,
 * plus the `Host` and `Content-Type` values that were signed (send exactly these).
 */
export function signVolcengineRequest(input: SignInput): Record<string, string> {
  const xDate = formatXDate(input.now ?? new Date());
  const shortDate = xDate.slice(0, 8);
  const bodyHash = sha256Hex(Buffer.from(input.body, 'utf8'));
  const signed: Record<string, string> = {
    'content-type': input.contentType,
    host: hostOf(input.url),
    'x-content-sha256': bodyHash,
    'x-date': xDate,
  };
  const names = Object.keys(signed).sort();
  const canonicalHeaders = names.map((name) => `${name}:${signed[name]!.trim()}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    input.method.toUpperCase(),
    input.url.pathname || '/',
    canonicalQuery(input.url.searchParams),
    canonicalHeaders,
    signedHeaders,
    bodyHash,
  ].join('\n');
  const scope = `${shortDate}/${input.region}/${input.service}/request`;
  const stringToSign = [ALGORITHM, xDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const kDate = hmac(input.keys.secretAccessKey, shortDate);
  const kSigning = hmac(hmac(hmac(kDate, input.region), input.service), 'request');
  const signature = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');
  return {
    ...signed,
    authorization: `${ALGORITHM} Credential=${input.keys.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}
