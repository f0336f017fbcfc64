import { describe, expect, it } from 'vitest';
import { loadConfig, providerConcurrency } from '../../src/config/config.js';

describe('loadConfig', () => {
  it('has a working default for everything', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ host: '127.0.0.1', port: 8080, databaseUrl: undefined, defaultProvider: 'sketch' });
    expect(config.dataDir).toMatch(/\/data$/);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('guards user-supplied URLs by default', () => {
    expect(loadConfig({}).userUrls).toEqual({ allowPrivate: false, fetchTimeoutMs: 15_000 });
    expect(loadConfig({ EASEL_ALLOW_PRIVATE_URLS: 'true', EASEL_INPUT_FETCH_TIMEOUT_MS: '2000' }).userUrls).toEqual({
      allowPrivate: true,
      fetchTimeoutMs: 2000,
    });
  });

  it('reads provider limits', () => {
    const config = loadConfig({ EASEL_PROVIDER_CONCURRENCY: 'sketch=3, replicate=9' });
    expect(providerConcurrency(config.queue, 'sketch')).toBe(3);
    expect(providerConcurrency(config.queue, 'replicate')).toBe(9);
    expect(providerConcurrency(config.queue, 'other')).toBe(64);
  });

  it('reads the input image limits', () => {
    expect(loadConfig({}).inputs).toEqual({ uploadMaxBytes: 20 * 1024 * 1024, maxPixels: 40_000_000 });
    const config = loadConfig({ EASEL_UPLOAD_MAX_BYTES: '5000000', EASEL_INPUT_MAX_PIXELS: '1000000' });
    expect(config.inputs).toEqual({ uploadMaxBytes: 5_000_000, maxPixels: 1_000_000 });
  });

  it.each([
    [{ EASEL_UPLOAD_MAX_BYTES: '10' }, /EASEL_UPLOAD_MAX_BYTES="10" is not valid/],
    [{ EASEL_INPUT_MAX_PIXELS: 'many' }, /EASEL_INPUT_MAX_PIXELS="many" is not valid/],
    [{ PORT: 'eighty' }, /PORT="eighty" is not valid: expected a whole number from 0 to 65535/],
    [{ PORT: '70000' }, /PORT/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must use postgres: or postgresql:/],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL is not a valid URL/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud" is not valid: expected one of/],
    [{ EASEL_PROVIDER_CONCURRENCY: 'sketch' }, /EASEL_PROVIDER_CONCURRENCY has a bad entry "sketch"/],
    [{ EASEL_HEARTBEAT_MS: '20000', EASEL_WORKER_DEAD_AFTER_MS: '30000' }, /at least twice EASEL_HEARTBEAT_MS/],
    [
      { EASEL_SHUTDOWN_GRACE_MS: '30000', EASEL_WORKER_DEAD_AFTER_MS: '30000' },
      /EASEL_SHUTDOWN_GRACE_MS \(30000\) must be less than EASEL_WORKER_DEAD_AFTER_MS/,
    ],
    [{ EASEL_WORKER_DEAD_AFTER_MS: '10000' }, /EASEL_SHUTDOWN_GRACE_MS \(20000\) must be less than/],
    [{ EASEL_DB_STATEMENT_TIMEOUT_MS: '5' }, /EASEL_DB_STATEMENT_TIMEOUT_MS="5" is not valid/],
    [{ EASEL_DATABASE_GIVE_UP_MS: 'never' }, /EASEL_DATABASE_GIVE_UP_MS="never" is not valid/],
    [{ EASEL_ALLOW_PRIVATE_URLS: 'yes' }, /EASEL_ALLOW_PRIVATE_URLS="yes" is not valid: expected one of true, false/],
    [{ EASEL_INPUT_FETCH_TIMEOUT_MS: '0' }, /EASEL_INPUT_FETCH_TIMEOUT_MS="0" is not valid/],
  ])('rejects %o with a clear message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('ADMIN_SECRET', () => {
  it('is unset by default, kept when long enough, refused when short', () => {
    expect(loadConfig({}).adminSecret).toBeUndefined();
    expect(loadConfig({ ADMIN_SECRET: '  0123456789abcdef  ' }).adminSecret).toBe('0123456789abcdef');
    expect(() => loadConfig({ ADMIN_SECRET: 'short' })).toThrow(/ADMIN_SECRET is too short \(5 characters\)/);
  });
});

describe('limits', () => {
  it('defaults to 1000 active tasks per user and 600 requests per key per minute', () => {
    expect(loadConfig({}).limits).toEqual({ userMaxActiveTasks: 1000, keyRatePerMinute: 600 });
  });

  it('reads EASEL_USER_MAX_ACTIVE_TASKS and EASEL_KEY_RATE_PER_MINUTE', () => {
    const config = loadConfig({ EASEL_USER_MAX_ACTIVE_TASKS: '5', EASEL_KEY_RATE_PER_MINUTE: '120' });
    expect(config.limits).toEqual({ userMaxActiveTasks: 5, keyRatePerMinute: 120 });
  });

  it.each([
    [
      { EASEL_USER_MAX_ACTIVE_TASKS: '0' },
      /EASEL_USER_MAX_ACTIVE_TASKS="0" is not valid: expected a whole number from 1/,
    ],
    [{ EASEL_USER_MAX_ACTIVE_TASKS: 'lots' }, /EASEL_USER_MAX_ACTIVE_TASKS="lots" is not valid/],
    [
      { EASEL_KEY_RATE_PER_MINUTE: '-1' },
      /EASEL_KEY_RATE_PER_MINUTE="-1" is not valid: expected a whole number from 1/,
    ],
    [{ EASEL_KEY_RATE_PER_MINUTE: '1.5' }, /EASEL_KEY_RATE_PER_MINUTE="1.5" is not valid/],
  ])('rejects %o with a clear message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
