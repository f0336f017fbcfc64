import { describe, expect, it } from 'vitest';
import { canonicalAddress, checkAddress, type AddressCategory } from '../../src/net/address-policy.js';
import { parseUserUrl, UserUrlRefused } from '../../src/net/user-url.js';

const refusedIpv4: Array<[string, AddressCategory]> = [
  ['0.0.0.0', 'unspecified'],
  ['0.255.255.255', 'unspecified'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['100.64.0.1', 'shared'],
  ['100.127.255.255', 'shared'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.169.254', 'link-local'],
  ['169.254.0.1', 'link-local'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.0.0.8', 'special-use'],
  ['192.0.2.1', 'documentation'],
  ['192.88.99.1', 'special-use'],
  ['192.168.1.1', 'private'],
  ['198.18.0.1', 'special-use'],
  ['198.19.255.255', 'special-use'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
];

// Neighbours just outside each refused range stay allowed, so no range is wider than it should be.
const allowedIpv4 = [
  '1.1.1.1',
  '8.8.8.8',
  '9.255.255.255',
  '11.0.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '169.255.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '192.0.1.0',
  '192.0.3.0',
  '192.167.255.255',
  '192.169.0.0',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
];

const refusedIpv6: Array<[string, AddressCategory]> = [
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:10.0.0.1', 'private'],
  ['::ffff:169.254.169.254', 'link-local'],
  ['::ffff:0.0.0.0', 'unspecified'],
  ['::127.0.0.1', 'reserved'], // IPv4-compatible
  ['::8.8.8.8', 'reserved'], // IPv4-compatible, even for a public IPv4: deprecated
  ['64:ff9b::127.0.0.1', 'loopback'], // NAT64
  ['64:ff9b::a9fe:a9fe', 'link-local'], // NAT64 of 169.254.169.254
  ['64:ff9b:1::1', 'special-use'],
  ['100::1', 'special-use'],
  ['2001::1', 'special-use'], // Teredo
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'special-use'], // Teredo
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['2002:7f00:1::1', 'loopback'], // 6to4 of 127.0.0.1
  ['2002:c0a8:101::', 'private'], // 6to4 of 192.168.1.1
  ['5f00::1', 'special-use'],
  ['fc00::1', 'unique-local'],
  ['fd00::1', 'unique-local'],
  ['fdff:ffff::1', 'unique-local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'link-local'],
  ['ff02::1', 'multicast'],
  ['ff0e::1', 'multicast'],
  ['4000::1', 'reserved'], // outside global unicast 2000::/3
  ['1::1', 'reserved'],
];

const allowedIpv6 = [
  '2606:4700:4700::1111',
  '2a00:1450:4001:82b::200e',
  '::ffff:8.8.8.8', // IPv4-mapped public address
  '::ffff:808:808',
  '64:ff9b::808:808', // NAT64 of 8.8.8.8
  '2002:808:808::1', // 6to4 of 8.8.8.8
  '2001:200::1', // just past 2001::/23
  '3ffe::1',
];

describe('checkAddress', () => {
  it.each(refusedIpv4)('refuses IPv4 %s as %s', (address, category) => {
    expect(checkAddress(address)).toEqual({ allowed: false, category });
  });

  it.each(allowedIpv4)('allows public IPv4 %s', (address) => {
    expect(checkAddress(address)).toEqual({ allowed: true });
  });

  it.each(refusedIpv6)('refuses IPv6 %s as %s', (address, category) => {
    expect(checkAddress(address)).toEqual({ allowed: false, category });
  });

  it.each(allowedIpv6)('allows public IPv6 %s', (address) => {
    expect(checkAddress(address)).toEqual({ allowed: true });
  });

  it.each(['', 'localhost', '127.1', '2130706433', '0x7f.0.0.1', '1.2.3.4.5', '::g', '[::1'])(
    'refuses %j, which is not an address in canonical form',
    (address) => {
      expect(checkAddress(address)).toEqual({ allowed: false, category: 'unparsable' });
    },
  );

  it('treats listed addresses as public, whatever spelling either side uses', () => {
    expect(checkAddress('127.0.0.2', new Set(['127.0.0.2']))).toEqual({ allowed: true });
    expect(checkAddress('[::ffff:127.0.0.2]', new Set(['::ffff:7f00:2']))).toEqual({ allowed: true });
    expect(checkAddress('127.0.0.1', new Set(['127.0.0.2']))).toEqual({ allowed: false, category: 'loopback' });
  });
});

describe('canonicalAddress', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::FFFF:127.0.0.1', '::ffff:7f00:1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
  ])('writes %s as %s', (input, canonical) => {
    expect(canonicalAddress(input)).toBe(canonical);
  });
});

describe('parseUserUrl', () => {
  // The guard relies on the WHATWG parser turning every IPv4 notation into dotted-quad, so that
  // the literal is judged (and never sent to a resolver that might read it differently).
  it.each([
    ['http://2130706433/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
    ['http://0x7f.1/', '127.0.0.1'],
    ['http://0x7f000001/', '127.0.0.1'],
    ['http://017700000001/', '127.0.0.1'],
    ['http://127.1/', '127.0.0.1'],
    ['http://127.0.0.1./', '127.0.0.1'],
    ['http://0/', '0.0.0.0'],
    ['http://167772161/', '10.0.0.1'],
    ['http://0xa9.0xfe.0xa9.0xfe/', '169.254.169.254'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
    ['http://[0:0:0:0:0:ffff:7f00:1]/', '[::ffff:7f00:1]'],
    ['https://EXAMPLE.com:8443/a.png', 'example.com'],
  ])('%s has host %s', (url, hostname) => {
    expect(parseUserUrl(url).hostname).toBe(hostname);
  });

  it.each([
    ['file:///etc/passwd', 'scheme'],
    ['ftp://example.com/a.png', 'scheme'],
    ['data:image/png;base64,AAAA', 'scheme'],
    ['gopher://example.com:70/_x', 'scheme'],
    ['javascript:alert(1)', 'scheme'],
    ['http://user:pass@example.com/a.png', 'credentials'],
    ['http://user@example.com/a.png', 'credentials'],
    ['http://example.com@127.0.0.1/', 'credentials'],
    ['not a url', 'invalid_url'],
    ['http://1.2.3.4.5/', 'invalid_url'],
    ['http://[fe80::1%25eth0]/', 'invalid_url'],
  ])('refuses %s (%s)', (url, reason) => {
    const error = catchError(() => parseUserUrl(url));
    expect(error).toBeInstanceOf(UserUrlRefused);
    expect((error as UserUrlRefused).reason).toBe(reason);
  });

  it('resolves a relative redirect target against the URL it came from', () => {
    expect(parseUserUrl('/b.png', new URL('https://example.com/a/a.png')).href).toBe('https://example.com/b.png');
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}
