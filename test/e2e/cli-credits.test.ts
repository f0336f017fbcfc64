import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_USER_ID } from '../../src/domain/task.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { startTestEasel, type TestEasel } from '../helpers/easel.js';
import { expectLedgerConsistent } from '../helpers/credits.js';
import { runCli, succeeded } from '../helpers/processes.js';

let easel: TestEasel;

const cli = (args: string[]) => runCli(args, { env: { EASEL_URL: easel.url } });

beforeAll(async () => {
  easel = await startTestEasel(await createTestDatabase(), { roles: { api: true, worker: false } });
});
afterAll(async () => {
  await easel?.stop();
});

describe('easel credits', () => {
  it('tops up and adjusts a user, once per idempotency key, and shows the balance', async () => {
    const userId = await createUser(easel.pool, 'cli-credits');
    const added = succeeded(await cli(['credits', 'add', userId, '12.5', '--reason', 'invoice 42']));
    expect(added.stdout).toBe(`top_up 12.5 credits for ${userId}: balance 12.5, held 0, available 12.5\n`);

    const once = ['credits', 'add', userId, '1', '--reason', 'retried', '--idempotency-key', 'cli-1', '--json'];
    const first = JSON.parse(succeeded(await cli(once)).stdout) as { balance: { balance: number } };
    const again = JSON.parse(succeeded(await cli(once)).stdout) as { balance: { balance: number } };
    expect(first.balance.balance).toBe(13.5);
    expect(again.balance.balance).toBe(13.5);

    const adjusted = succeeded(
      await cli(['credits', 'add', userId, '--adjustment', '--reason', 'correction', '--', '-0.25']),
    );
    expect(adjusted.stdout).toContain('adjustment -0.25 credits');

    const badAmount = await cli(['credits', 'add', userId, '1.0000001', '--reason', 'too fine']);
    expect(badAmount.code).toBe(1);
    expect(badAmount.stderr).toMatch(/at most 6 decimals/);
    const unknown = await cli(['credits', 'add', crypto.randomUUID(), '1', '--reason', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('USER_NOT_FOUND');
    expect(unknown.stderr).toMatch(/--idempotency-key [0-9a-f-]{36}/);

    succeeded(await cli(['credits', 'add', LOCAL_USER_ID, '3', '--reason', 'me']));
    expect(succeeded(await cli(['credits', 'balance'])).stdout).toBe('balance 3, held 0, available 3\n');
    const { rows } = await easel.pool.query('SELECT balance FROM credit_accounts WHERE user_id = $1', [userId]);
    expect(rows[0].balance).toBe(13_250_000);
    await expectLedgerConsistent(easel.pool);
    // Eight CLI processes: each starts a TypeScript program, slow on a loaded machine.
  }, 240_000);
});
