import { describe, expect, it } from 'vitest';
import { createHostAllowlist, hostName } from '../../src/api/host-check.js';
import { loadConfig } from '../../src/config/config.js';

describe('hostName', () => {
  it('takes the name out of a Host header', () => {
    expect(hostName('Easel.Example.com:8443')).toBe('easel.example.com');
    expect(hostName('[::1]:8080')).toBe('::1');
    expect(hostName('localhost.')).toBe('localhost');
    expect(hostName('a:b:c')).toBeUndefined();
    expect(hostName('')).toBeUndefined();
    expect(hostName(undefined)).toBeUndefined();
  });
});

describe('the Host allowlist', () => {
  const allowlist = (env: Record<string, string>) => createHostAllowlist(loadConfig(env));

  it('adds HOST when it is a specific address, not when it is every interface', () => {
    expect(allowlist({ HOST: '192.168.1.20' })('192.168.1.20:8080')).toBe(true);
    expect(allowlist({ HOST: '0.0.0.0' })('0.0.0.0:8080')).toBe(false);
    expect(allowlist({ HOST: '::' })('[::]:8080')).toBe(false);
    expect(allowlist({ HOST: 'fd00::1' })('[fd00::1]:8080')).toBe(true);
  });

  it("adds EASEL_PUBLIC_URL's host, and the names in EASEL_ALLOWED_HOSTS", () => {
    const isAllowed = allowlist({
      EASEL_PUBLIC_URL: 'https://easel.example.com/',
      EASEL_ALLOWED_HOSTS: 'a.lan, [fd00::2]',
    });
    for (const host of ['easel.example.com', 'a.lan:1', '[fd00::2]:8080', 'localhost:3000', 'x.localhost']) {
      expect(isAllowed(host), host).toBe(true);
    }
    for (const host of ['example.com', 'easel.example.com.evil.example', 'localhost.evil.example', 'b.lan']) {
      expect(isAllowed(host), host).toBe(false);
    }
  });

  it('allows everything with *', () => {
    expect(allowlist({ EASEL_ALLOWED_HOSTS: '*' })('anything.example')).toBe(true);
  });
});

describe('config of the HTTP surface', () => {
  it('refuses host entries with a port and origins with a path or a wildcard, naming the variable', () => {
    expect(() => loadConfig({ EASEL_ALLOWED_HOSTS: 'easel.lan:8080' })).toThrow(/EASEL_ALLOWED_HOSTS.*without a port/);
    expect(() => loadConfig({ EASEL_CORS_ORIGINS: 'https://app.example.com/console' })).toThrow(/EASEL_CORS_ORIGINS/);
    expect(() => loadConfig({ EASEL_CORS_ORIGINS: '*' })).toThrow(/EASEL_CORS_ORIGINS/);
  });

  it('keeps CORS off and no extra hosts by default', () => {
    const config = loadConfig({});
    expect(config.corsOrigins).toEqual([]);
    expect(config.allowedHosts).toEqual([]);
    expect(loadConfig({ EASEL_CORS_ORIGINS: 'https://App.example.com/' }).corsOrigins).toEqual([
      'https://app.example.com',
    ]);
  });
});
