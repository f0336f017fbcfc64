import { isIPv4, isIPv6 } from 'node:net';

/**
 * Which IP addresses a URL supplied by a user may make Easel connect to (the SSRF guard's table).
 *
 * Pure: no I/O. Addresses come here already resolved (by DNS or because the URL named an address);
 * host names never do. Anything that does not parse as an address is refused (fail closed).
 *
 * IPv4: the ranges of the IANA special-purpose registry that are not globally reachable, plus
 * multicast and the reserved 240/4 (which holds the broadcast address).
 * IPv6: only global unicast (2000::/3) may be public at all; inside it the special ranges are
 * refused. Forms that carry an IPv4 address the connection may end up at (IPv4-mapped, NAT64,
 * 6to4) are judged as that IPv4 address.
 */

export type AddressVerdict = { allowed: true } | { allowed: false; category: AddressCategory };

export const ADDRESS_CATEGORIES = [
  'unparsable',
  'unspecified',
  'loopback',
  'private',
  'shared', // carrier-grade NAT, 100.64/10
  'link-local', // includes cloud metadata at 169.254.169.254
  'unique-local',
  'multicast',
  'reserved',
  'documentation',
  'special-use',
] as const;
export type AddressCategory = (typeof ADDRESS_CATEGORIES)[number];

interface Range<T> {
  base: T;
  bits: number;
  category: AddressCategory;
}

const IPV4_REFUSED: Range<number>[] = [
  v4('0.0.0.0/8', 'unspecified'), // "this network"; 0.0.0.0 reaches the local host on Linux
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'shared'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'special-use'), // IETF protocol assignments
  v4('192.0.2.0/24', 'documentation'),
  v4('192.88.99.0/24', 'special-use'), // deprecated 6to4 relay anycast
  v4('192.168.0.0/16', 'private'),
  v4('198.18.0.0/15', 'special-use'), // benchmarking
  v4('198.51.100.0/24', 'documentation'),
  v4('203.0.113.0/24', 'documentation'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved'), // includes the broadcast address 255.255.255.255
];

// Checked in order after the IPv4-carrying forms have been unwrapped.
const IPV6_REFUSED: Range<bigint>[] = [
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  // IPv4-compatible (deprecated, RFC 4291) and everything else in ::/96 that is not unwrapped above.
  v6('::/96', 'reserved'),
  v6('64:ff9b:1::/48', 'special-use'), // local-use NAT64 (RFC 8215): translates into private networks
  v6('100::/64', 'special-use'), // discard-only
  // IETF protocol assignments, including Teredo 2001::/32 (whose embedded client address is
  // obfuscated and whose relay could reach anywhere) and ORCHID: no image lives there.
  v6('2001::/23', 'special-use'),
  v6('2001:db8::/32', 'documentation'),
  v6('3fff::/20', 'documentation'),
  v6('5f00::/16', 'special-use'), // SRv6 SIDs
  v6('fc00::/7', 'unique-local'),
  v6('fe80::/10', 'link-local'),
  v6('fec0::/10', 'link-local'), // deprecated site-local
  v6('ff00::/8', 'multicast'),
];

const GLOBAL_UNICAST = v6('2000::/3', 'reserved');

/** Judges one resolved address. `treatAsPublic` (canonical forms, for tests) skips the table. */
export function checkAddress(address: string, treatAsPublic: ReadonlySet<string> = new Set()): AddressVerdict {
  const canonical = canonicalAddress(address);
  if (canonical === undefined) return refused('unparsable');
  if (treatAsPublic.has(canonical)) return { allowed: true };
  if (isIPv4(canonical)) return checkIpv4(parseIpv4(canonical));
  return checkIpv6(parseIpv6(canonical)!);
}

/**
 * The one spelling of an address used for comparisons: dotted quad for IPv4, the shortest form
 * (as the WHATWG URL parser writes it) for IPv6, zone ids dropped. Undefined when not an address.
 */
export function canonicalAddress(address: string): string | undefined {
  const bare = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (isIPv4(bare)) return formatIpv4(parseIpv4(bare));
  if (!isIPv6(bare)) return undefined;
  // The URL parser canonicalises IPv6 hosts; borrow it rather than keep a second formatter.
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

function checkIpv4(value: number): AddressVerdict {
  const range = IPV4_REFUSED.find((r) => inRange(value, r));
  return range ? refused(range.category) : { allowed: true };
}

function checkIpv6(value: bigint): AddressVerdict {
  const embedded = embeddedIpv4(value);
  if (embedded !== undefined) return checkIpv4(embedded);
  const range = IPV6_REFUSED.find((r) => inRangeBig(value, r));
  if (range) return refused(range.category);
  return inRangeBig(value, GLOBAL_UNICAST) ? { allowed: true } : refused('reserved');
}

/** The IPv4 address a connection to this IPv6 address actually reaches, for the forms that have one. */
function embeddedIpv4(value: bigint): number | undefined {
  const low32 = Number(value & 0xffff_ffffn);
  if (value >> 32n === 0xffffn) return low32; // IPv4-mapped ::ffff:0:0/96
  if (value >> 32n === 0x0064_ff9b_0000_0000_0000_0000n) return low32; // NAT64 64:ff9b::/96
  if (value >> 112n === 0x2002n) return Number((value >> 80n) & 0xffff_ffffn); // 6to4 2002::/16
  return undefined;
}

function refused(category: AddressCategory): AddressVerdict {
  return { allowed: false, category };
}

function inRange(value: number, range: Range<number>): boolean {
  // `>>> 0` keeps the arithmetic unsigned; JS shifts count mod 32, hence the /0 special case.
  const mask = range.bits === 0 ? 0 : (~0 << (32 - range.bits)) >>> 0;
  return (value & mask) >>> 0 === (range.base & mask) >>> 0;
}

function inRangeBig(value: bigint, range: Range<bigint>): boolean {
  const shift = BigInt(128 - range.bits);
  return value >> shift === range.base >> shift;
}

function parseIpv4(dotted: string): number {
  return dotted.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
}

function parseIpv6(text: string): bigint | undefined {
  if (!isIPv6(text)) return undefined;
  let body = text;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (dotted) {
    const v = parseIpv4(dotted[1]!);
    body = body.slice(0, -dotted[1]!.length) + `${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = body.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function v4(cidr: string, category: AddressCategory): Range<number> {
  const [base, bits] = cidr.split('/') as [string, string];
  return { base: parseIpv4(base), bits: Number(bits), category };
}

function v6(cidr: string, category: AddressCategory): Range<bigint> {
  const [base, bits] = cidr.split('/') as [string, string];
  return { base: parseIpv6(base)!, bits: Number(bits), category };
}
