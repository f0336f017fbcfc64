import { describe, expect, it } from 'vitest';
import { UrlSigner } from '../../src/api/image-delivery.js';

const KEY = Buffer.from('a-test-key-of-enough-length-0123456789');
const PATH = '/v1/tasks/0190f2a4-0000-7000-8000-000000000001/images/0';

const parts = (signed: string) => {
  const url = new URL(signed, 'http://x');
  return {
    path: url.pathname,
    expires: url.searchParams.get('expires')!,
    signature: url.searchParams.get('signature')!,
  };
};

describe('UrlSigner', () => {
  it('signs a path that verifies until it expires', () => {
    let now = 1_800_000_000_000;
    const signer = new UrlSigner(KEY, 60, () => now);
    const { path, expires, signature } = parts(signer.sign(PATH));
    expect(path).toBe(PATH);
    expect(Number(expires)).toBe(1_800_000_060);
    expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signer.verify(path, expires, signature)).toBe('valid');
    now += 60_000;
    expect(signer.verify(path, expires, signature)).toBe('valid');
    now += 1000;
    expect(signer.verify(path, expires, signature)).toBe('expired');
  });

  it('refuses another path, a moved expiry, another key, and malformed parameters', () => {
    const signer = new UrlSigner(KEY, 60);
    const { path, expires, signature } = parts(signer.sign(PATH));
    expect(signer.verify(PATH.replace(/0$/, '1'), expires, signature)).toBe('invalid');
    expect(signer.verify(`${path}/thumbnail`, expires, signature)).toBe('invalid');
    expect(signer.verify(path, String(Number(expires) + 3600), signature)).toBe('invalid');
    expect(
      new UrlSigner(Buffer.from('another-key-of-enough-length-987654321'), 60).verify(path, expires, signature),
    ).toBe('invalid');
    expect(signer.verify(path, undefined, signature)).toBe('invalid');
    expect(signer.verify(path, expires, undefined)).toBe('invalid');
    expect(signer.verify(path, '1e12', signature)).toBe('invalid');
    expect(signer.verify(path, expires, signature.slice(1))).toBe('invalid');
  });

  it('an expired URL with a forged signature is invalid, not expired (no oracle for valid times)', () => {
    let now = 1_800_000_000_000;
    const signer = new UrlSigner(KEY, 1, () => now);
    const { path, expires } = parts(signer.sign(PATH));
    now += 10_000;
    expect(signer.verify(path, expires, 'A'.repeat(43))).toBe('invalid');
  });
});
