import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { startTestEasel, type TestEasel } from '../helpers/easel.js';
import { runCli, succeeded } from '../helpers/processes.js';
import { enqueueTask } from '../helpers/queue.js';

/** `easel admin …` and `easel queue clear` as real processes against a real server, with API keys. */

let easel: TestEasel;
let userId: string;
let adminKey: string;
let userKey: string;

const cli = (args: string[], key = adminKey) => runCli(args, { env: { EASEL_URL: easel.url, EASEL_API_KEY: key } });
const statusOf = async (id: string) =>
  (await easel.pool.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [id])).rows[0]?.status;

async function seed(provider: string, status: 'queued' | 'failed' | 'running' = 'queued'): Promise<string> {
  const task = await enqueueTask(easel.pool, { userId, provider, prompt: `cli admin ${provider}` });
  if (status !== 'queued') {
    await easel.pool.query(
      `UPDATE tasks SET status = $2, attempt = 1,
              error = CASE WHEN $2 = 'failed' THEN '{"code":"UPSTREAM_DOWN","message":"the provider was down"}'::jsonb END,
              finished_at = CASE WHEN $2 = 'failed' THEN now() END
       WHERE id = $1`,
      [task.id, status],
    );
  }
  return task.id;
}

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), { roles: { api: true, worker: false } });
  userId = await createUser(easel.pool, 'cli user');
  const adminId = await createUser(easel.pool, 'cli admin');
  await easel.pool.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [adminId]);
  adminKey = (await createApiKey(easel.pool, adminId, 'cli')).key;
  userKey = (await createApiKey(easel.pool, userId, 'cli')).key;
});
afterAll(async () => {
  await easel?.stop();
});

describe('easel admin', () => {
  it('refuses a user key with ADMIN_REQUIRED', async () => {
    for (const args of [
      ['admin', 'tasks'],
      ['admin', 'stats'],
      ['admin', 'dead', 'ls'],
      ['admin', 'users'],
    ]) {
      const refused = await cli(args, userKey);
      expect(refused.code, args.join(' ')).toBe(1);
      expect(refused.stderr).toContain('ADMIN_REQUIRED');
    }
  }, 120_000);

  it("lists every user's tasks as a table and as JSON, with filters", async () => {
    const queued = await seed('cli-list');
    const failed = await seed('cli-list', 'failed');
    const table = succeeded(await cli(['admin', 'tasks', '--provider', 'cli-list'])).stdout;
    expect(table).toMatch(new RegExp(`^${failed}\\s+failed\\s+cli-list\\s+${userId}\\s+\\S+\\s+UPSTREAM_DOWN`, 'm'));
    expect(table).toMatch(
      new RegExp(`^${queued}\\s+queued\\s+cli-list\\s+${userId}\\s+\\S+\\s+cli admin cli-list`, 'm'),
    );
    const json = JSON.parse(
      succeeded(await cli(['admin', 'tasks', '--status', 'failed', '--user', userId, '--since', '1h', '--json']))
        .stdout,
    ) as { data: Array<{ id: string; user_id: string }> };
    expect(json.data.map((task) => task.id)).toEqual([failed]);
    expect(json.data[0]!.user_id).toBe(userId);
    const paged = succeeded(await cli(['admin', 'tasks', '--provider', 'cli-list', '--limit', '1'])).stdout;
    expect(paged).toContain(`… more: easel admin tasks --provider cli-list --limit 1 --cursor ${failed}`);
    const bad = await cli(['admin', 'tasks', '--since', 'last tuesday']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--since.*RFC 3339/);
  }, 120_000);

  it('lists, retries and purges dead letters; purge without --yes only says how many', async () => {
    const [one, two, three] = [
      await seed('cli-dead', 'failed'),
      await seed('cli-dead', 'failed'),
      await seed('cli-dead', 'failed'),
    ];
    const listed = succeeded(await cli(['admin', 'dead', 'ls', '--provider', 'cli-dead'])).stdout;
    for (const id of [one, two, three]) expect(listed).toContain(id);

    expect(succeeded(await cli(['admin', 'dead', 'retry', one!])).stdout).toBe('1 dead letter(s) queued again\n');
    expect(await statusOf(one!)).toBe('queued');

    const refused = await cli(['admin', 'dead', 'purge', '--provider', 'cli-dead', '--code', 'UPSTREAM_DOWN']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('not purging without --yes: 2 dead letter(s) would be deleted');
    expect(await statusOf(two!)).toBe('failed');

    const purged = succeeded(await cli(['admin', 'dead', 'purge', '--provider', 'cli-dead', '--yes'])).stdout;
    expect(purged).toBe('2 dead letter(s) purged, 0 image file(s) deleted\n');
    expect(await statusOf(two!)).toBeUndefined();
    expect(await statusOf(three!)).toBeUndefined();
  }, 120_000);

  it('shows queue statistics and users', async () => {
    await seed('cli-stats');
    await seed('cli-stats', 'running');
    const stats = succeeded(await cli(['admin', 'stats', '--days', '3'])).stdout;
    expect(stats).toMatch(/^cli-stats\s+5\s+1\s+1\s+0\s+0$/m);
    expect(stats).toMatch(/^day \(UTC\)\s+processed\s+failed$/m);
    const json = JSON.parse(succeeded(await cli(['admin', 'stats', '--json'])).stdout) as { days: unknown[] };
    expect(json.days).toHaveLength(7);
    const users = succeeded(await cli(['admin', 'users', '--limit', '100'])).stdout;
    expect(users).toMatch(new RegExp(`^${userId}\\s+user\\s+cli user\\s+\\d+ queued, 1 running`, 'm'));
  }, 120_000);
});

describe('easel queue clear', () => {
  it('refuses without --yes and says how many would go; with --yes cancels only queued tasks', async () => {
    const queued = [await seed('cli-clear'), await seed('cli-clear'), await seed('cli-clear')];
    const running = await seed('cli-clear', 'running');
    const other = await seed('cli-keep');

    const refused = await cli(['queue', 'clear', '--provider', 'cli-clear']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('not clearing without --yes: 3 queued task(s) of cli-clear would be canceled');
    for (const id of queued) expect(await statusOf(id)).toBe('queued');

    const byUser = await cli(['queue', 'clear', '--provider', 'cli-clear', '--yes'], userKey);
    expect(byUser.code).toBe(1);
    expect(byUser.stderr).toContain('ADMIN_REQUIRED');

    expect(succeeded(await cli(['queue', 'clear', '--provider', 'cli-clear', '--yes'])).stdout).toBe(
      '3 queued task(s) canceled\n',
    );
    for (const id of queued) expect(await statusOf(id)).toBe('canceled');
    expect(await statusOf(running)).toBe('running');
    expect(await statusOf(other)).toBe('queued');
  }, 120_000);
});
