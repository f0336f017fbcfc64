import { Worker } from 'node:worker_threads';
import type { Pool } from '../src/db/pool.js';
import { LOCAL_USER_ID } from '../src/domain/task.js';
import { ms } from './support.js';

/**
 * (b) End to end: `tasks` HTTP submits with 64 in flight from a client thread, each a 64×64 sketch at zero latency,
 * timed from the first submit until every task has succeeded. Baseline: durable single-row
 * commits per second on the same pool and concurrency, the floor any submit pays.
 */
export async function measureThroughput(baseUrl: string, pool: Pool, tasks: number): Promise<string> {
  const inFlight = 64;
  const started = performance.now();
  // Submits come from a worker thread (see http-load.mjs), like a separate client would.
  const load = new Worker(new URL('./http-load.mjs', import.meta.url), {
    workerData: { baseUrl, from: 0, to: tasks, inFlight },
  });
  await new Promise((resolve, reject) => {
    load.once('message', resolve);
    load.once('error', reject);
  });
  await load.terminate();
  const submittedAt = performance.now();
  for (;;) {
    const { rows } = await pool.query<{ done: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed FROM tasks`,
    );
    if (rows[0]!.failed > 0) throw new Error(`${rows[0]!.failed} tasks failed during the throughput run`);
    if (rows[0]!.done >= tasks) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (performance.now() - started) / 1000;

  // Baseline: how many durable commits/s this pool manages at the same concurrency.
  await pool.query('CREATE TABLE IF NOT EXISTS bench_commits (id serial, user_id uuid)');
  const commits = 5000;
  let done = 0;
  const baselineStart = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (done < commits) {
        done++;
        await pool.query('INSERT INTO bench_commits (user_id) VALUES ($1)', [LOCAL_USER_ID]);
      }
    }),
  );
  const commitsPerSecond = commits / ((performance.now() - baselineStart) / 1000);
  const rate = tasks / seconds;
  return [
    `(b) throughput, HTTP submit → succeeded, ${tasks} tasks, ${inFlight} submits in flight:`,
    `    ${rate.toFixed(0)} tasks/s (${seconds.toFixed(2)} s; all submitted after ${ms(submittedAt - started)})   (target ≥ 1,000 tasks/s)`,
    `    baseline: ${commitsPerSecond.toFixed(0)} single-row durable commits/s; one task costs ${(commitsPerSecond / rate).toFixed(1)} of them`,
  ].join('\n');
}
