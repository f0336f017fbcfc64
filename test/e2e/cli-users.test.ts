import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestEasel, type TestEasel } from '../helpers/easel.js';
import { runCli, succeeded } from '../helpers/processes.js';

let easel: TestEasel;
let adminKey: string;
let outDir: string;
const KEY_LINE = /^easel_sk_[A-Za-z0-9_-]{43}\n$/;

/** `easel <args>` against a server in EASEL_AUTH=required, with EASEL_API_KEY when given. */
const cli = (key: string | undefined, ...args: string[]) =>
  runCli(args, { env: { EASEL_URL: easel.url, EASEL_API_KEY: key ?? '' } });

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), { env: { EASEL_AUTH: 'required' } });
  const { rows } = await easel.pool.query<{ id: string }>(
    `INSERT INTO users (id, name, role) VALUES (gen_random_uuid(), 'root', 'admin') RETURNING id`,
  );
  adminKey = (await createApiKey(easel.pool, rows[0]!.id, 'cli admin')).key;
  outDir = await mkdtemp(path.join(os.tmpdir(), 'easel-cli-users-'));
});
afterAll(async () => {
  await easel?.stop();
  await rm(outDir, { recursive: true, force: true });
});

describe('easel keys generate', () => {
  it('prints a fresh key offline, in the form EASEL_ADMIN_KEY takes', async () => {
    const first = succeeded(await runCli(['keys', 'generate'], { env: { EASEL_URL: 'http://127.0.0.1:9' } }));
    const second = succeeded(await runCli(['keys', 'generate']));
    expect(first.stdout).toMatch(KEY_LINE);
    expect(second.stdout).toMatch(KEY_LINE);
    expect(first.stdout).not.toBe(second.stdout);
  });
});

describe('easel users and easel keys', () => {
  it('explains a missing, a wrong and a non-admin key', async () => {
    const keyless = await cli(undefined, 'users', 'ls');
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toMatch(/AUTH_REQUIRED: .*; set EASEL_API_KEY to your API key/);
    const wrong = await cli(`easel_sk_${'a'.repeat(43)}`, 'tasks', 'ls');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/INVALID_API_KEY: .*; EASEL_API_KEY is not a key this server knows/);
  }, 60_000);

  it('adds a user, makes them a key, which works for their own things only, and revokes it', async () => {
    const added = JSON.parse(
      succeeded(await cli(adminKey, 'users', 'add', 'Ada', '--email', 'ada@example.com', '--json')).stdout,
    ) as { id: string; role: string };
    expect(added.role).toBe('user');
    expect(succeeded(await cli(adminKey, 'users', 'ls')).stdout).toMatch(
      new RegExp(`^${added.id}  user   ada@example\\.com +Ada$`, 'm'),
    );
    const twice = await cli(adminKey, 'users', 'add', 'Ada again', '--email', 'ADA@example.com');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('USER_EXISTS');

    const created = succeeded(await cli(adminKey, 'keys', 'create', 'ada@example.com', '--name', 'laptop'));
    expect(created.stdout).toMatch(KEY_LINE);
    expect(created.stderr).toContain('shown this once');
    const adaKey = created.stdout.trim();

    // Ada's key: her own keys and tasks, the whole generate flow (submit, stream, download)...
    const listed = succeeded(await cli(adaKey, 'keys', 'ls')).stdout;
    expect(listed).toContain(`${adaKey.slice(0, 17)}…`);
    expect(listed).toContain('laptop');
    expect(listed).not.toContain(adaKey);
    succeeded(
      await cli(adaKey, 'generate', 'a kite', '--width', '64', '--height', '64', '--steps', '1', '--out', outDir),
    );
    expect((await readdir(outDir)).length).toBe(1);
    expect(succeeded(await cli(adaKey, 'tasks', 'ls')).stdout).toContain('succeeded');
    // ...but no admin commands.
    const notAdmin = await cli(adaKey, 'users', 'ls');
    expect(notAdmin.code).toBe(1);
    expect(notAdmin.stderr).toMatch(/ADMIN_REQUIRED: .*; this command needs an admin's key/);

    const keyId = listed.split('  ')[0]!;
    expect(succeeded(await cli(adaKey, 'keys', 'revoke', keyId)).stdout).toMatch(new RegExp(`^${keyId} revoked at `));
    expect((await cli(adaKey, 'keys', 'ls')).stderr).toContain('INVALID_API_KEY');
    expect(succeeded(await cli(adminKey, 'keys', 'ls', added.id)).stdout).toMatch(/revoked /);

    expect(succeeded(await cli(adminKey, 'users', 'rm', 'ada@example.com')).stdout).toContain(`${added.id} deleted`);
    expect(succeeded(await cli(adminKey, 'users', 'ls')).stdout).not.toContain('Ada');
    const gone = await cli(adminKey, 'users', 'rm', 'ada@example.com');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('no user with email ada@example.com');
  }, 240_000);

  it('refuses to delete the last admin with a clear line', async () => {
    const me = succeeded(await cli(adminKey, 'keys', 'ls')).stdout;
    expect(me).toContain('cli admin');
    const { rows } = await easel.pool.query<{ id: string }>(`SELECT id FROM users WHERE name = 'root'`);
    const last = await cli(adminKey, 'users', 'rm', rows[0]!.id);
    expect(last.code).toBe(1);
    expect(last.stderr).toMatch(/LAST_ADMIN: root is the last admin/);
  }, 60_000);
});
