import { Worker } from 'node:worker_threads';
import type { Hints } from '../src/db/notifier.js';
import type { Pool } from '../src/db/pool.js';
import { LOCAL_USER_ID } from '../src/domain/task.js';
import { submitTask } from '../src/tasks/submit.js';
import { sketchTask } from './support.js';

const IN_FLIGHT = 64;

/** Submits from a worker thread (see http-load.mjs), as a separate client would send them. */
export async function submitOverHttp(baseUrl: string, tasks: number): Promise<void> {
  const load = new Worker(new URL('./http-load.mjs', import.meta.url), {
    workerData: { baseUrl, from: 0, to: tasks, inFlight: IN_FLIGHT },
  });
  await new Promise((resolve, reject) => {
    load.once('message', resolve);
    load.once('error', reject);
  });
  await load.terminate();
}

/** The same tasks through the queue's own submit, without HTTP: what the pipeline alone costs. */
export async function submitDirect(pool: Pool, hints: Hints, tasks: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < tasks) {
        const i = next++;
        await submitTask(pool, hints, sketchTask(`direct ${i}`, i));
      }
    }),
  );
}

/**
 * (b) Tasks per second from the first submit until every task has succeeded, each a 64×64
 * sketch at zero latency, 64 submits in flight.
 */
export async function tasksPerSecond(pool: Pool, tasks: number, submitAll: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await submitAll();
  for (;;) {
    const { rows } = await pool.query<{ done: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done,
              count(*) FILTER (WHERE status = 'failed')::int AS failed FROM tasks`,
    );
    if (rows[0]!.failed > 0) throw new Error(`${rows[0]!.failed} tasks failed during the throughput run`);
    if (rows[0]!.done >= tasks) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return tasks / ((performance.now() - started) / 1000);
}

/** Baseline: single-row durable commits per second on the same pool, the floor any submit pays. */
export async function durableCommitsPerSecond(pool: Pool): Promise<number> {
  await pool.query('CREATE TABLE IF NOT EXISTS bench_commits (id serial, user_id uuid)');
  const commits = 5000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (done < commits) {
        done++;
        await pool.query('INSERT INTO bench_commits (user_id) VALUES ($1)', [LOCAL_USER_ID]);
      }
    }),
  );
  return commits / ((performance.now() - started) / 1000);
}
