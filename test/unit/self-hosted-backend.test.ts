import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/env.js';
import { credentialsFromEnv } from '../../src/credentials/env-credentials.js';
import { parseBackend, parseBackendList } from '../../src/providers/self-hosted/backend.js';

describe('self-hosted backends', () => {
  it('splits user info off as basic auth and keeps a loggable base URL', () => {
    expect(parseBackend('http://gpu1:7860/')).toEqual({ baseUrl: 'http://gpu1:7860' });
    expect(parseBackend('https://me:p%40ss@gpu2.lan:8443/sd')).toEqual({
      baseUrl: 'https://gpu2.lan:8443/sd',
      authorization: `Basic ${Buffer.from('me:p@ss').toString('base64')}`,
    });
  });

  it('refuses what is not an http(s) URL, naming the variable', () => {
    expect(() => parseBackend('gpu1:7860')).toThrow(/http\(s\) URL/);
    expect(() => parseBackend('ftp://gpu1')).toThrow(/http\(s\) URL/);
    expect(() => parseBackendList({ A1111_URLS: 'http://a:1, nope' }, 'A1111_URLS')).toThrow(ConfigError);
    expect(() => parseBackendList({ A1111_URLS: 'http://a:1, nope' }, 'A1111_URLS')).toThrow(/^A1111_URLS: /);
  });

  it('imports each listed server as a credential of its pool, labelled without its password', () => {
    const found = credentialsFromEnv({
      A1111_URLS: 'http://gpu1:7860, http://me:secret@gpu2:7860',
      COMFYUI_URLS: 'http://gpu3:8188',
    });
    expect(found).toEqual([
      { provider: 'a1111', label: 'env A1111_URLS[1] http://gpu1:7860', secret: 'http://gpu1:7860' },
      { provider: 'a1111', label: 'env A1111_URLS[2] http://gpu2:7860', secret: 'http://me:secret@gpu2:7860' },
      { provider: 'comfyui', label: 'env COMFYUI_URLS[1] http://gpu3:8188', secret: 'http://gpu3:8188' },
    ]);
  });
});
