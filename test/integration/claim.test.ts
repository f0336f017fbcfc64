import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTasks } from '../../src/tasks/claim.js';
import { succeedAttempt } from '../../src/tasks/attempt.js';
import { createPool, type Pool } from '../../src/db/pool.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { createTestDatabase, createUser } from '../helpers/database.js';
import { addWorker, enqueueTask, waitForServerUptime } from '../helpers/queue.js';

/** Claims through the SQL alone: what they take, and how many run at once. */
describe('claiming tasks', () => {
  let pool: Pool;
  let userId: string;
  const workerId = randomUUID();
  const DEAD_AFTER_MS = 30_000;

  beforeAll(async () => {
    // Several connections, so concurrent claims really run side by side in the database.
    pool = createPool(await createTestDatabase(), { max: 8 });
    userId = await createUser(pool, 'claims');
    await addWorker(pool, workerId);
  });
  afterAll(async () => {
    await pool?.end();
  });

  const claim = (provider: string, want: number, providerLimit: number, worker = workerId) =>
    claimTasks(pool, NO_HINTS, { provider, workerId: worker, want, providerLimit, deadAfterMs: DEAD_AFTER_MS });
  const runningCount = async (provider: string) =>
    (
      await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE provider = $1 AND status = 'running'`,
        [provider],
      )
    ).rows[0]!.n;

  it.each([
    ['a placeholder and a quote', "evil$2'name"],
    ['a literal-escaping id', "x$4'); DELETE FROM tasks; --"],
    ['a backslash and a dollar quote', 'b\\$$1$$'],
  ])('claims exactly the tasks of a provider id with %s', async (_label, provider) => {
    const mine = await enqueueTask(pool, { userId, provider, prompt: 'mine' });
    const other = await enqueueTask(pool, { userId, provider: `${provider}-other`, prompt: 'other' });
    const claimed = await claim(provider, 5, 5);
    expect(claimed.map((task) => [task.id, task.provider, task.worker_id])).toEqual([[mine.id, provider, workerId]]);
    const { rows } = await pool.query('SELECT status FROM tasks WHERE id = $1', [other.id]);
    expect(rows[0].status).toBe('queued');
  });

  it('never runs more than the provider limit, with many claimers on many connections', async () => {
    const provider = 'limited';
    const limit = 4;
    for (let i = 0; i < 60; i++) await enqueueTask(pool, { userId, provider, prompt: `l${i}` });
    for (let round = 0; round < 12; round++) {
      // Eight claimers at once, each with more free slots than the limit leaves.
      const claimed = await Promise.all(Array.from({ length: 8 }, () => claim(provider, 3, limit)));
      const running = await runningCount(provider);
      expect({ round, claimed: claimed.flat().length <= limit, running }).toEqual({
        round,
        claimed: true,
        running: limit,
      });
      // Finish some of them, so the next round competes for the freed slots.
      const { rows } = await pool.query<{ id: string; lease_token: string }>(
        `SELECT id, lease_token FROM tasks WHERE provider = $1 AND status = 'running' ORDER BY random() LIMIT $2`,
        [provider, 1 + (round % limit)],
      );
      for (const row of rows) {
        const lease = { taskId: row.id, token: row.lease_token, provider };
        expect(await succeedAttempt(pool, NO_HINTS, lease, { predictTimeSeconds: 0, images: [] })).toBe(true);
      }
    }
  });

  it("gives live workers the whole limit while a dead worker's orphaned tasks await rescue", async () => {
    const provider = 'orphans';
    const limit = 3;
    const deadWorker = randomUUID();
    const ORPHAN_DEAD_AFTER_MS = 3000;
    await addWorker(pool, deadWorker);
    for (let i = 0; i < 2 * limit; i++) await enqueueTask(pool, { userId, provider, prompt: `o${i}` });
    expect(await claim(provider, limit, limit, deadWorker)).toHaveLength(limit);
    // The worker was killed long ago: no heartbeat since. (Silence counts from the server's start
    // at the earliest, so the server must have been up for longer than dead-after.)
    await pool.query(`UPDATE workers SET last_seen_at = now() - interval '1 hour' WHERE id = $1`, [deadWorker]);
    await waitForServerUptime(pool, ORPHAN_DEAD_AFTER_MS);
    await addWorker(pool, workerId);
    const claimOrphans = () =>
      claimTasks(pool, NO_HINTS, {
        provider,
        workerId,
        want: limit,
        providerLimit: limit,
        deadAfterMs: ORPHAN_DEAD_AFTER_MS,
      });
    expect(await claimOrphans()).toHaveLength(limit);
    // The live worker's own tasks still count: no more than the limit of live attempts.
    expect(await claimOrphans()).toHaveLength(0);
  });
});
