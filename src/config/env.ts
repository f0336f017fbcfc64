import { isIP } from 'node:net';

/**
 * Small typed readers for environment variables. Each one either returns a valid value or
 * throws a ConfigError that names the variable, what it got and what it wanted, so a bad
 * setting stops the program at start with a message a person can act on.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Env = Record<string, string | undefined>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

export function readString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** An address to listen on: an IPv4 or IPv6 address, or a host name (not a URL, not host:port). */
export function readHost(env: Env, name: string, fallback: string): string {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  // `999.1.1.1` is a valid host name by the letter of RFC 1123, but nobody means it as one.
  const validName = HOSTNAME.test(value) && !/^[\d.]+$/.test(value);
  if (isIP(value) === 0 && !validName) {
    throw new ConfigError(
      `${name}=${JSON.stringify(value)} is not valid: expected an IP address or a host name, e.g. 127.0.0.1, 0.0.0.0, :: or localhost`,
    );
  }
  return value;
}

export function readInt(env: Env, name: string, fallback: number, range: { min: number; max: number }): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < range.min || parsed > range.max) {
    throw new ConfigError(
      `${name}=${JSON.stringify(value)} is not valid: expected a whole number from ${range.min} to ${range.max}`,
    );
  }
  return parsed;
}

export function readChoice<const T extends string>(env: Env, name: string, fallback: T, choices: readonly T[]): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new ConfigError(`${name}=${JSON.stringify(value)} is not valid: expected one of ${choices.join(', ')}`);
  }
  return value as T;
}

export function readUrl(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')} (got ${url.protocol})`);
  }
  return value;
}

/** `sketch=32,replicate=4` → { sketch: 32, replicate: 4 } */
export function readLimits(env: Env, name: string, fallback: Record<string, number>): Record<string, number> {
  const value = raw(env, name);
  if (value === undefined) return { ...fallback };
  const limits: Record<string, number> = { ...fallback };
  for (const pair of value.split(',')) {
    const [key, count] = pair.split('=').map((part) => part.trim());
    const parsed = Number(count);
    if (!key || !Number.isInteger(parsed) || parsed < 1 || parsed > 10_000) {
      throw new ConfigError(
        `${name} has a bad entry ${JSON.stringify(pair)}: expected provider=limit, e.g. sketch=32,replicate=4`,
      );
    }
    limits[key] = parsed;
  }
  return limits;
}
