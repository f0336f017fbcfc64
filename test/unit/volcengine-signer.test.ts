import { describe, expect, it } from 'vitest';
import { CredentialError } from '../../src/providers/errors.js';
import { parseVolcengineSecret, volcengineSecret } from '../../src/providers/volcengine/keys.js';
import { canonicalQuery, formatXDate, signVolcengineRequest } from '../../src/providers/volcengine/signer.js';
import { credentialsFromEnv } from '../../src/credentials/env-credentials.js';

/**
 * The worked example of /work/shared/providers/README.md §3a. It was computed outside Easel's code
 * twice (Python following Volcengine's official sample, and a separate Node `crypto` version), and
 * recomputed for this test once by hand with python3 `hmac`/`hashlib`:
 *   body hash, sha256(CanonicalRequest) and Signature below all matched.
 */
const EXAMPLE = {
  accessKeyId: 'AKLTexampleAccessKeyId',
  secretAccessKey: 'exampleSecretAccessKey==',
  now: new Date('2025-01-01T08:00:00Z'),
  body: '{"req_key":"jimeng_t2i_v30","prompt":"a cat","seed":-1,"width":1328,"height":1328}',
  bodyHash: '89c6207780d62c1bbbfd1a919587afe3f0591ecc219f160f0601724faeb5ee8f',
  authorization:
    'HMAC-SHA256 Credential=AKLTexampleAccessKeyId/20250101/cn-north-1/cv/request, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature=b643e7b419cc24e3dfad1a9541e48ec238806237a7e2492bd4047aee589a595e',
};

describe('Volcengine V4 signer', () => {
  it('matches the independently computed worked example', () => {
    const headers = signVolcengineRequest({
      method: 'POST',
      url: new URL('https://visual.volcengineapi.com/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31'),
      body: EXAMPLE.body,
      contentType: 'application/json',
      region: 'cn-north-1',
      service: 'cv',
      keys: { accessKeyId: EXAMPLE.accessKeyId, secretAccessKey: EXAMPLE.secretAccessKey },
      now: EXAMPLE.now,
    });
    expect(headers).toEqual({
      'content-type': 'application/json',
      host: 'visual.volcengineapi.com',
      'x-content-sha256': EXAMPLE.bodyHash,
      'x-date': '20250101T080000Z',
      authorization: EXAMPLE.authorization,
    });
  });

  it('signs the query in sorted order whatever order the URL has, and differs with any input changed', () => {
    const sign = (url: string, body = EXAMPLE.body, secretAccessKey = EXAMPLE.secretAccessKey) =>
      signVolcengineRequest({
        method: 'POST',
        url: new URL(url),
        body,
        contentType: 'application/json',
        region: 'cn-north-1',
        service: 'cv',
        keys: { accessKeyId: EXAMPLE.accessKeyId, secretAccessKey },
        now: EXAMPLE.now,
      }).authorization;
    const base = 'https://visual.volcengineapi.com/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31';
    expect(sign('https://visual.volcengineapi.com/?Version=2022-08-31&Action=CVSync2AsyncSubmitTask')).toBe(
      EXAMPLE.authorization,
    );
    expect(sign(base, EXAMPLE.body.replace('a cat', 'a dog'))).not.toBe(EXAMPLE.authorization);
    expect(sign(base, EXAMPLE.body, 'otherSecret==')).not.toBe(EXAMPLE.authorization);
  });

  it('encodes query keys and values as RFC 3986 and formats X-Date in basic ISO 8601', () => {
    expect(
      canonicalQuery(
        new URLSearchParams([
          ['b', "it's a (test)*"],
          ['a', 'x y/z~'],
        ]),
      ),
    ).toBe('a=x%20y%2Fz~&b=it%27s%20a%20%28test%29%2A');
    expect(formatXDate(new Date('2026-11-23T01:02:03.456Z'))).toBe('20261123T010203Z');
  });
});

describe('Volcengine key pair credentials', () => {
  it('stores the pair as SK:AK so the shown last four characters are the key id’s', () => {
    const secret = volcengineSecret('AKLTkeyid1234', 'c2VjcmV0LWtleQ==');
    expect(secret).toBe('c2VjcmV0LWtleQ==:AKLTkeyid1234');
    expect(secret.slice(-4)).toBe('1234');
    expect(parseVolcengineSecret(secret)).toEqual({
      accessKeyId: 'AKLTkeyid1234',
      secretAccessKey: 'c2VjcmV0LWtleQ==',
    });
  });

  it('refuses a malformed or swapped secret as a credential error that never quotes it', () => {
    for (const secret of ['no-colon-here', 'a:b:c', ':AKLTx', 'AKLTkeyid1234:c2VjcmV0LWtleQ==']) {
      let error: unknown;
      try {
        parseVolcengineSecret(secret);
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(CredentialError);
      expect((error as Error).message).not.toContain('c2VjcmV0');
      expect((error as Error).message).toContain('<SecretAccessKey>:<AccessKeyId>');
    }
  });

  it('imports VOLCENGINE_ACCESS_KEY + VOLCENGINE_SECRET_KEY as one volcengine credential, and ARK_API_KEY', () => {
    const found = credentialsFromEnv({
      VOLCENGINE_ACCESS_KEY: ' AKLTkeyid1234 ',
      VOLCENGINE_SECRET_KEY: 'c2VjcmV0LWtleQ==',
      ARK_API_KEY: 'ark-key-1',
    });
    expect(found).toContainEqual({
      provider: 'volcengine',
      label: 'env VOLCENGINE_ACCESS_KEY AKLTkeyid1234',
      secret: 'c2VjcmV0LWtleQ==:AKLTkeyid1234',
    });
    expect(found).toContainEqual({ provider: 'ark', label: 'env ARK_API_KEY', secret: 'ark-key-1' });
    expect(found.some((credential) => credential.label.includes('c2VjcmV0'))).toBe(false);
    expect(() => credentialsFromEnv({ VOLCENGINE_ACCESS_KEY: 'AKLTx' })).toThrow(/VOLCENGINE_SECRET_KEY/);
  });
});
