import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { createTestDatabase } from '../helpers/database.js';
import { api, startTestEasel, type TestEasel } from '../helpers/easel.js';
import { runCli, succeeded } from '../helpers/processes.js';

let easel: TestEasel;
const KEY = randomBytes(32);

/** `easel <args>` against the test server with `stdin` piped in (or a closed pipe); never throws. */
const cli = (args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) =>
  runCli(args, { stdin: options.stdin, env: { EASEL_URL: easel.url, ...options.env } });

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), {
    roles: { api: true, worker: false },
    env: { EASEL_SECRET_KEY: KEY.toString('hex') },
  });
});
afterAll(async () => {
  await easel?.stop();
});

describe('easel credentials', () => {
  it('adds from stdin and from --from-env, lists, disables, enables and removes; never prints a secret', async () => {
    const piped = 'r8_CliPipedSecret0042';
    const fromEnv = 'hf_CliEnvironmentSecret77';

    const added = succeeded(
      await cli(
        ['credentials', 'add', 'replicate', '--label', 'team', '--concurrency', '2', '--daily-limit', '9', '--json'],
        {
          stdin: `${piped}\n`,
        },
      ),
    );
    const first = JSON.parse(added.stdout) as {
      id: string;
      secret_hint: string;
      concurrency: number;
      daily_limit: number;
    };
    expect(first).toMatchObject({ secret_hint: '…0042', concurrency: 2, daily_limit: 9 });

    const second = succeeded(
      await cli(['credentials', 'add', 'huggingface', '--from-env', 'MY_HF'], { env: { MY_HF: fromEnv } }),
    );
    expect(second.stdout).toMatch(/^[0-9a-f-]{36} added \(huggingface, env MY_HF, …et77\)\n$/);
    const secondId = second.stdout.slice(0, 36);

    const duplicate = await cli(['credentials', 'add', 'replicate'], { stdin: piped });
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toContain('CREDENTIAL_EXISTS');
    expect(duplicate.stderr).toContain(first.id);

    const empty = await cli(['credentials', 'add', 'replicate']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/stdin was empty/);

    const listed = succeeded(await cli(['credentials', 'ls']));
    expect(listed.stdout).toMatch(
      new RegExp(`${first.id}\\s+replicate\\s+…0042\\s+active\\s+0/2 busy\\s+0/9 today\\s+team`),
    );
    expect(listed.stdout).toContain(secondId);
    const onlyHf = JSON.parse(
      succeeded(await cli(['credentials', 'ls', '--provider', 'huggingface', '--json'])).stdout,
    ) as {
      data: Array<{ id: string }>;
    };
    expect(onlyHf.data.map((credential) => credential.id)).toEqual([secondId]);

    succeeded(await cli(['credentials', 'disable', first.id, '--reason', 'rotating']));
    expect(succeeded(await cli(['credentials', 'ls', '--provider', 'replicate'])).stdout).toMatch(
      /disabled\s.*disabled: rotating/,
    );
    expect(succeeded(await cli(['credentials', 'enable', first.id])).stdout).toBe(`${first.id} enabled (active)\n`);
    expect(succeeded(await cli(['credentials', 'rm', first.id])).stdout).toBe(`${first.id} deleted\n`);
    const gone = await cli(['credentials', 'rm', first.id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('CREDENTIAL_NOT_FOUND');

    const everything = [added, second, duplicate, listed].map((result) => result.stdout + result.stderr).join('\n');
    for (const secret of [piped, fromEnv]) expect(everything).not.toContain(secret);
  }, 180_000);

  it("shows a NovelAI account's token state and days left", async () => {
    const account = '{"password":"nai-password-1","email":"nai@example.com"}';
    // Another provider's credential beside it, which must list as before (no token column).
    await api(easel.url, 'POST', '/v1/admin/credentials', { provider: 'replicate', secret: 'r8_BesideNovelAI0001' });
    const added = JSON.parse(
      succeeded(await cli(['credentials', 'add', 'novelai', '--json'], { stdin: account })).stdout,
    ) as {
      id: string;
    };
    expect(succeeded(await cli(['credentials', 'ls', '--provider', 'novelai'])).stdout).toMatch(
      new RegExp(`${added.id}\\s+novelai\\s+…om"}\\s+active\\s.*token none`),
    );
    // A token cached with 12 days and an hour left, as a sign-in leaves it.
    const box = new SecretBox(KEY);
    await easel.pool.query(
      `INSERT INTO credential_tokens (credential_id, token_ciphertext, expires_at)
       VALUES ($1, $2, now() + interval '12 days 1 hour')`,
      [added.id, box.seal('header.claims.signature')],
    );
    // Every credential listed; only the NovelAI one has a token column.
    const lines = succeeded(await cli(['credentials', 'ls']))
      .stdout.trim()
      .split('\n');
    expect(lines.find((line) => line.startsWith(added.id))).toMatch(/token valid 12d/);
    const others = lines.filter((line) => !line.startsWith(added.id));
    expect(others.length).toBeGreaterThan(0);
    for (const line of others) expect(line).not.toMatch(/token/);
  }, 180_000);

  it('refuses a bad value with the option named, before asking the server', async () => {
    const bad = await cli(['credentials', 'add', 'replicate', '--concurrency', '0'], { stdin: 'r8_NotSentAtAll1' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--concurrency.*must be from 1 to 10000/);
  }, 60_000);
});
