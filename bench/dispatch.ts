import type { Hints } from '../src/db/notifier.js';
import type { Pool } from '../src/db/pool.js';
import { submitTask } from '../src/tasks/submit.js';
import { medianOf, ms, percentile, sketchTask } from './support.js';

/**
 * (a) Sequential samples, as graphile-worker's latency test does: submit one task, wait until
 * the adapter has started it and the worker is idle again, repeat. Measured from the submit's
 * commit (the moment the statement returns) to the adapter's first line.
 */
export async function measureDispatch(
  pool: Pool,
  hints: Hints,
  starts: Map<string, number>,
  workerIdle: () => boolean,
  samples: number,
): Promise<string> {
  const latencies: number[] = [];
  const warmup = 50;
  for (let i = 0; i < samples + warmup; i++) {
    const outcome = await submitTask(pool, hints, sketchTask(`dispatch ${i}`, i));
    const committedAt = performance.now();
    const id = outcome.task.id;
    while (!starts.has(id)) await new Promise((resolve) => setImmediate(resolve));
    if (i >= warmup) latencies.push(starts.get(id)! - committedAt);
    while (!workerIdle()) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  latencies.sort((a, b) => a - b);
  const roundTrip = await medianOf(200, () => pool.query('SELECT 1'));
  return [
    `(a) dispatch latency, submit commit → adapter start, ${samples} sequential tasks:`,
    `    p50 ${ms(percentile(latencies, 50))}   p99 ${ms(percentile(latencies, 99))}   max ${ms(latencies.at(-1)!)}   (targets: p50 ≤ 3 ms, p99 ≤ 15 ms)`,
    `    baseline SELECT 1 round trip ${ms(roundTrip)}; p50 = ${(percentile(latencies, 50) / roundTrip).toFixed(1)}× that`,
  ].join('\n');
}
