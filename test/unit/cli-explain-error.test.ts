import { describe, expect, it } from 'vitest';
import { describeDatabaseUrl, explainError, UserPathError } from '../../src/cli/explain-error.js';

const errno = (code: string, fields: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${code} text`), { code, ...fields });
const server = { host: '127.0.0.1', port: 8080, databaseUrl: 'postgres://easel:secret@db.example:6543/easel' };

describe('explainError', () => {
  it.each([
    [errno('EACCES', { syscall: 'listen', port: 80 }), /not allowed to listen on port 80 .*set PORT to 1024 or above/],
    [errno('EADDRINUSE', { syscall: 'listen', port: 8080 }), /^port 8080 is in use; set PORT/],
    [errno('ENOTFOUND', { syscall: 'getaddrinfo', hostname: '127.0.0.1' }), /^HOST=127\.0\.0\.1 does not resolve/],
    [errno('ECONNREFUSED', { syscall: 'connect' }), /DATABASE_URL \(db\.example:6543\/easel\): connection refused/],
    [errno('ETIMEDOUT'), /cannot reach PostgreSQL at DATABASE_URL \(db\.example:6543\/easel\) \(ETIMEDOUT\)/],
    [errno('ENOTFOUND', { hostname: 'db.example' }), /cannot resolve the host of DATABASE_URL/],
    [errno('3D000'), /at DATABASE_URL .*; create it \(createdb\)/],
    [errno('EROFS', { path: '/data/images' }), /^cannot use \/data\/images: read-only file system/],
  ])('%s', (error, line) => {
    expect(explainError(error, { server })).toMatch(line);
    expect(explainError(error, { server })).not.toContain('secret');
  });

  it('finds the code of a connection to a name with several addresses', () => {
    const both = new AggregateError([errno('ECONNREFUSED', { address: '::1' }), errno('ECONNREFUSED')], '');
    Object.assign(both, { code: 'ECONNREFUSED' });
    expect(explainError(both, { server })).toMatch(/connection refused/);
  });

  it('names the embedded PostgreSQL when DATABASE_URL is unset', () => {
    const embedded = { ...server, databaseUrl: undefined };
    expect(explainError(errno('ECONNREFUSED'), { server: embedded })).toMatch(/at the embedded PostgreSQL/);
  });

  it('names the option of a path the user chose', () => {
    expect(explainError(new UserPathError('--out', '/proc/x', errno('ENOENT')))).toBe(
      '--out /proc/x: cannot be created there; choose a directory you can write to',
    );
  });

  it('points anything else at --debug', () => {
    expect(explainError(new TypeError('x is not a function'))).toBe(
      'x is not a function (run with --debug for the stack trace)',
    );
  });
});

describe('describeDatabaseUrl', () => {
  it('says where without the password', () => {
    expect(describeDatabaseUrl('postgres://u:p@h/db')).toBe('h:5432/db');
  });
});
