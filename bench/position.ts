import { createPool } from '../src/db/pool.js';
import { queuePosition } from '../src/tasks/position.js';
import { QueuePositions } from '../src/tasks/queue-positions.js';
import type { TaskRow } from '../src/tasks/rows.js';
import { medianOf, ms, percentile } from './support.js';

/**
 * (c) `queued` tasks spread over 50 users and 3 priorities, then the position query the API
 * uses (QueuePositions) for tasks at random places and for the very last one. For comparison:
 * the exact full count, the snapshot it refreshes at most once a second, and a primary-key
 * lookup as the baseline.
 */
export async function measurePosition(databaseUrl: string, queued: number): Promise<string> {
  const pool = createPool(databaseUrl, { max: 2 });
  try {
    await pool.query(
      `INSERT INTO users (id, name) SELECT gen_random_uuid(), 'bench ' || g FROM generate_series(1, 50) g`,
    );
    await pool.query(
      `INSERT INTO tasks (id, user_id, kind, provider, model, params, priority, vtime, max_attempts)
       SELECT gen_random_uuid(), users.ids[1 + g % 50], 'txt2img', 'sketch', 'sketch-v1', '{"prompt":"p"}', (g % 3) * 4, g / 50, 4
       FROM generate_series(1, $1) g, (SELECT array_agg(id) AS ids FROM users WHERE name LIKE 'bench %') users`,
      [queued],
    );
    await pool.query('VACUUM ANALYZE tasks');
    const { rows: sample } = await pool.query<TaskRow>(`SELECT * FROM tasks ORDER BY random() LIMIT 300`);
    const { rows: lastRows } = await pool.query<TaskRow>(
      `SELECT * FROM tasks WHERE status = 'queued' ORDER BY rank DESC, vtime DESC, id DESC LIMIT 1`,
    );
    const last = lastRows[0]!;
    const positions = new QueuePositions(pool);
    const snapshotStart = performance.now();
    await positions.position(last); // builds the first snapshot
    const snapshotMs = performance.now() - snapshotStart;
    for (const task of sample.slice(0, 20)) await positions.position(task); // warm the plan
    const times: number[] = [];
    let worstError = 0;
    for (const task of sample) {
      const start = performance.now();
      const estimate = await positions.position(task);
      times.push(performance.now() - start);
      worstError = Math.max(worstError, Math.abs(estimate - (await queuePosition(pool, task))));
    }
    times.sort((a, b) => a - b);
    const lastPosition = await positions.position(last);
    const deepest = await medianOf(20, () => positions.position(last));
    const exactDeepest = await medianOf(5, () => queuePosition(pool, last));
    const baseline = await medianOf(200, () => pool.query('SELECT id FROM tasks WHERE id = $1', [last.id]));
    return [
      `(c) queue position with ${queued.toLocaleString('en')} tasks queued (50 users, 3 priorities):`,
      `    random task p50 ${ms(percentile(times, 50))}  p99 ${ms(percentile(times, 99))};  last task (position ${lastPosition}) ${ms(deepest)}   (target ≤ 2 ms)`,
      `    vs exact count of the last task ${ms(exactDeepest)}; largest difference from exact ${worstError}; snapshot build ${ms(snapshotMs)} (at most once a second)`,
      `    baseline primary-key lookup ${ms(baseline)}; random p50 = ${(percentile(times, 50) / baseline).toFixed(1)}× that`,
    ].join('\n');
  } finally {
    await pool.end();
  }
}
