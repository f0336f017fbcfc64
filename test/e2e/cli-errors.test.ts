import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.js';
import { runCli, type CliResult } from '../helpers/processes.js';

/** Run `easel <args>` to its end, never throwing: the exit status is what is under test. */
// JSON logs go to stdout; what the person reads is on stderr.
const easel = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { env: { LOG_LEVEL: 'info', EASEL_LOG_FORMAT: 'json', ...env } });

/** One line on stderr that starts `easel:`, no stack trace, a failing exit status. */
function expectOneClearLine(result: CliResult, pattern: RegExp): void {
  const context = `exit ${result.code}\nstderr:\n${result.stderr}\nstdout:\n${result.stdout}`;
  expect(result.code, context).not.toBe(0);
  expect(result.stderr.trim().split('\n'), context).toHaveLength(1);
  expect(result.stderr, context).toMatch(/^easel: /);
  expect(result.stderr, context).not.toMatch(/^\s+at /m);
  expect(result.stderr, context).toMatch(pattern);
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

let databaseUrl: string;
let dataDir: string;
let blocker: net.Server;
let busyPort: number;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-cli-errors-'));
  blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  busyPort = (blocker.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => blocker.close(resolve));
  await rm(dataDir, { recursive: true, force: true });
});

/** `easel api` on the test database, with the given settings on top. */
const api = (env: Record<string, string>, args: string[] = []) =>
  easel(['api', ...args], { DATABASE_URL: databaseUrl, EASEL_DATA_DIR: dataDir, PORT: '0', ...env });

describe.concurrent('start-up errors are one line with what to do, and no stack trace', () => {
  it('a bad combination of settings', async () => {
    const result = await api({ EASEL_HEARTBEAT_MS: '20000', EASEL_WORKER_DEAD_AFTER_MS: '30000' });
    expectOneClearLine(result, /EASEL_WORKER_DEAD_AFTER_MS .* EASEL_HEARTBEAT_MS/);
  });

  it('a data directory that cannot be made (under /proc, where a recursive mkdir would spin forever)', async () => {
    const result = await easel(['start'], { DATABASE_URL: '', EASEL_DATA_DIR: '/proc/easel-data', PORT: '0' });
    expectOneClearLine(result, /\/proc\/easel-data: .*EASEL_DATA_DIR/);
  });

  it('a port in use', async () => {
    const result = await api({ PORT: String(busyPort) });
    expectOneClearLine(
      result,
      new RegExp(`port ${busyPort} is in use; set PORT to another port or stop the other process`),
    );
  });

  it('a DATABASE_URL nobody answers, naming the variable and the host it tried', async () => {
    const port = await freePort();
    const result = await api({ DATABASE_URL: `postgres://easel:secret@127.0.0.1:${port}/easel` });
    expectOneClearLine(result, new RegExp(`DATABASE_URL \\(127\\.0\\.0\\.1:${port}/easel\\).*connection refused`));
    expect(result.stderr).not.toContain('secret');
  });

  it('a DATABASE_URL whose host does not resolve', async () => {
    const result = await api({ DATABASE_URL: 'postgres://easel@no-such-host.invalid:5432/easel' });
    expectOneClearLine(result, /cannot resolve the host of DATABASE_URL \(no-such-host\.invalid:5432\/easel\)/);
  });

  it('a DATABASE_URL with a wrong password', async () => {
    const url = new URL(databaseUrl);
    url.password = 'wrong';
    const result = await api({ DATABASE_URL: url.toString() });
    expectOneClearLine(result, /refused the login .*; fix the user or password in DATABASE_URL/);
    expect(result.stderr).not.toContain(':wrong@');
  });

  it('a DATABASE_URL naming a database that does not exist', async () => {
    const url = new URL(databaseUrl);
    url.pathname = '/no_such_database';
    const result = await api({ DATABASE_URL: url.toString() });
    expectOneClearLine(result, /database "no_such_database" does not exist at DATABASE_URL/);
  });

  it.each(['not a host!', '999.1.1.1', 'http://127.0.0.1', '127.0.0.1:8080'])('HOST=%s', async (host) => {
    const result = await api({ HOST: host });
    expectOneClearLine(result, /HOST=.* is not valid: expected an IP address or a host name/);
  });

  it('a HOST that is not an address of this machine', async () => {
    // TEST-NET-1 (RFC 5737): never assigned to a local interface.
    const result = await api({ HOST: '192.0.2.1' });
    expectOneClearLine(result, /HOST=192\.0\.2\.1 is not an address of this machine/);
  });

  it('prints the stack with --debug or LOG_LEVEL=debug', async () => {
    for (const run of [
      api({ PORT: String(busyPort) }, ['--debug']),
      api({ PORT: String(busyPort), LOG_LEVEL: 'debug' }),
    ]) {
      const result = await run;
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^easel: port \d+ is in use/);
      expect(result.stderr).toMatch(/^\s+at /m);
    }
  });
});

describe('easel generate --out', () => {
  // Nothing listens at EASEL_URL: a check that waited for the task would report that instead.
  const generate = (out: string) =>
    easel(['generate', 'a lighthouse', '--out', out], { EASEL_URL: 'http://127.0.0.1:9' });

  it('refuses a directory that cannot be created, at once and before submitting', async () => {
    const result = await generate('/proc/easel-out/images');
    expectOneClearLine(result, /--out \/proc\/easel-out\/images: .*; choose a directory you can write to/);
  });

  it('refuses a path that is a file', async () => {
    const file = path.join(dataDir, 'a-file');
    await writeFile(file, '');
    const result = await generate(path.join(file, 'images'));
    expectOneClearLine(result, /--out .*a-file\/images: a part of the path is a file/);
  });

  it('refuses a read-only place', async () => {
    const result = await generate('/sys/kernel/easel-out');
    expectOneClearLine(result, /--out \/sys\/kernel\/easel-out: /);
  });
});
