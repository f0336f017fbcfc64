import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/config/env.js';
import { readLicenseApi } from '../../src/config/license-api.js';

describe('LICENSE_API_* configuration', () => {
  it('is off without LICENSE_API_ENDPOINT', () => {
    expect(readLicenseApi({})).toBeUndefined();
    expect(readLicenseApi({ LICENSE_API_ENDPOINT: '  ', LICENSE_API_FAIL_OPEN: 'false' })).toBeUndefined();
    expect(loadConfig({ DATABASE_URL: 'postgres://x/y' }).licenseApi).toBeUndefined();
  });

  it('defaults to a 3 s timeout and failing open, as the deployments it replaces do', () => {
    expect(readLicenseApi({ LICENSE_API_ENDPOINT: 'https://licence.example/api/' })).toEqual({
      endpoint: 'https://licence.example/api',
      timeoutMs: 3000,
      failOpen: true,
    });
  });

  it('reads the timeout and fail-open settings', () => {
    expect(
      readLicenseApi({
        LICENSE_API_ENDPOINT: 'http://127.0.0.1:9000',
        LICENSE_API_TIMEOUT_MS: '500',
        LICENSE_API_FAIL_OPEN: 'false',
      }),
    ).toEqual({ endpoint: 'http://127.0.0.1:9000', timeoutMs: 500, failOpen: false });
    for (const yes of ['true', 'TRUE', '1', 'yes', 'on']) {
      expect(readLicenseApi({ LICENSE_API_ENDPOINT: 'http://a', LICENSE_API_FAIL_OPEN: yes })!.failOpen).toBe(true);
    }
    for (const no of ['false', '0', 'no', 'off']) {
      expect(readLicenseApi({ LICENSE_API_ENDPOINT: 'http://a', LICENSE_API_FAIL_OPEN: no })!.failOpen).toBe(false);
    }
  });

  it('refuses bad values with a ConfigError naming the variable', () => {
    const bad: Array<Record<string, string>> = [
      { LICENSE_API_ENDPOINT: 'not a url' },
      { LICENSE_API_ENDPOINT: 'ftp://licence.example' },
      { LICENSE_API_ENDPOINT: 'http://a', LICENSE_API_TIMEOUT_MS: '0' },
      { LICENSE_API_ENDPOINT: 'http://a', LICENSE_API_TIMEOUT_MS: '2.5' },
      { LICENSE_API_ENDPOINT: 'http://a', LICENSE_API_TIMEOUT_MS: '999999999' },
      { LICENSE_API_ENDPOINT: 'http://a', LICENSE_API_FAIL_OPEN: 'maybe' },
    ];
    for (const env of bad) {
      const name = Object.keys(env).at(-1)!;
      expect(() => readLicenseApi(env), JSON.stringify(env)).toThrow(ConfigError);
      expect(() => readLicenseApi(env), JSON.stringify(env)).toThrow(name);
    }
  });
});
