import { describe, expect, it } from 'vitest';
import { generateKey } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/config/env.js';

describe('EASEL_AUTH', () => {
  it('defaults to local on a loopback address and to required on any other', () => {
    for (const HOST of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) {
      expect(loadConfig({ HOST }).authMode, HOST).toBe('local');
    }
    for (const HOST of ['0.0.0.0', '::', '192.168.1.10', 'easel.example.com']) {
      expect(loadConfig({ HOST }).authMode, HOST).toBe('required');
    }
    expect(loadConfig({}).authMode).toBe('local');
  });

  it('takes required anywhere, and refuses local on a network address unless forced', () => {
    expect(loadConfig({ HOST: '127.0.0.1', EASEL_AUTH: 'required' }).authMode).toBe('required');
    expect(() => loadConfig({ HOST: '0.0.0.0', EASEL_AUTH: 'local' })).toThrow(ConfigError);
    expect(() => loadConfig({ HOST: '0.0.0.0', EASEL_AUTH: 'local' })).toThrow(/EASEL_AUTH_FORCE_LOCAL=true/);
    expect(() => loadConfig({ HOST: '0.0.0.0', EASEL_AUTH: 'local', EASEL_AUTH_FORCE_LOCAL: 'false' })).toThrow(
      ConfigError,
    );
    expect(loadConfig({ HOST: '0.0.0.0', EASEL_AUTH: 'local', EASEL_AUTH_FORCE_LOCAL: 'true' }).authMode).toBe('local');
  });

  it('refuses unknown values with a clear error', () => {
    expect(() => loadConfig({ EASEL_AUTH: 'none' })).toThrow(/EASEL_AUTH/);
    expect(() => loadConfig({ EASEL_AUTH_FORCE_LOCAL: 'yes' })).toThrow(/EASEL_AUTH_FORCE_LOCAL/);
  });
});

describe('EASEL_ADMIN_KEY', () => {
  it('takes a generated key and refuses anything else without echoing it', () => {
    const { key } = generateKey();
    expect(loadConfig({ EASEL_ADMIN_KEY: key }).adminKey).toBe(key);
    expect(loadConfig({ EASEL_ADMIN_KEY: '' }).adminKey).toBeUndefined();
    for (const bad of ['hunter2-secret-value', key.slice(0, -1), key + 'x', key.replace('easel_sk_', 'easel_pk_')]) {
      let message = '';
      try {
        loadConfig({ EASEL_ADMIN_KEY: bad });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toContain('easel keys generate');
      expect(message).not.toContain(bad);
    }
  });
});
