import type { Pool } from '../../src/db/pool.js';
import { NO_HINTS } from '../../src/db/notifier.js';
import { submitTask } from '../../src/tasks/submit.js';
import type { TaskRow } from '../../src/tasks/rows.js';

/** Queue one small task straight through the SQL (no API), for tests of the queue itself. */
export async function enqueueTask(
  pool: Pool,
  task: { userId: string; provider: string; prompt?: string; priority?: number; maxAttempts?: number },
): Promise<TaskRow> {
  const outcome = await submitTask(pool, NO_HINTS, {
    userId: task.userId,
    kind: 'txt2img',
    provider: task.provider,
    model: 'm',
    params: {
      prompt: task.prompt ?? 'queued by a test',
      negative_prompt: null,
      width: 64,
      height: 64,
      steps: 1,
      guidance: 7,
      n: 1,
      seed: 1,
    },
    providerOptions: {},
    priority: task.priority ?? 5,
    maxAttempts: task.maxAttempts ?? 3,
  });
  return outcome.task;
}

/** A row in `workers`, heard from `silentForMs` ago (by the database's clock). */
export async function addWorker(pool: Pool, id: string, silentForMs = 0): Promise<void> {
  await pool.query(
    `INSERT INTO workers (id, host, pid, concurrency, last_seen_at)
     VALUES ($1, 'test', 1, 100, now() - make_interval(secs => $2::double precision / 1000))
     ON CONFLICT (id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at`,
    [id, silentForMs],
  );
}

/**
 * Wait until the database server has been up for `ms`. Silence is counted from the later of a
 * worker's last heartbeat and the server's start, so a test that wants a worker presumed dead
 * after `ms` needs a server at least that old.
 */
export async function waitForServerUptime(pool: Pool, ms: number): Promise<void> {
  const { rows } = await pool.query<{ uptime_ms: number }>(
    `SELECT extract(epoch FROM now() - pg_postmaster_start_time()) * 1000 AS uptime_ms`,
  );
  const missing = ms - Number(rows[0]!.uptime_ms);
  if (missing > 0) await new Promise((resolve) => setTimeout(resolve, missing + 50));
}
