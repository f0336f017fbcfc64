import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { createPool } from '../src/db/pool.js';
import { LOCAL_USER_ID } from '../src/domain/task.js';
import type { NewTask } from '../src/tasks/submit.js';

/** A migrated database named `name` on the benchmark's server. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), { max: 1 });
  await migrate(pool);
  await pool.end();
  return url.toString();
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const ms = (value: number) => `${value.toFixed(2)} ms`;

/** Median wall time of `fn` over `runs` runs, in ms. */
export async function medianOf(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return percentile(
    times.sort((a, b) => a - b),
    50,
  );
}

/** The benchmark's task: a 64×64 one-step sketch at zero latency, one attempt. */
export function sketchTask(prompt: string, seed: number): NewTask {
  return {
    userId: LOCAL_USER_ID,
    kind: 'txt2img',
    provider: 'sketch',
    model: 'sketch-v1',
    params: { prompt, negative_prompt: null, width: 64, height: 64, steps: 1, guidance: 7, n: 1, seed },
    providerOptions: {},
    priority: 5,
    maxAttempts: 1,
  };
}
