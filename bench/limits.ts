/**
 * `npx tsx bench/limits.ts`: what the limits (issue 7) cost, with embedded PostgreSQL. Prints
 * figures as ratios against baselines measured in the same process; asserts nothing.
 *
 *   (a) the per-request rate count (one upsert per keyed request) against a bare round trip
 *       and against the key lookup every keyed request already makes
 *   (b) a submit under EASEL_USER_MAX_ACTIVE_TASKS (per-user lock, count, tag and insert in one
 *       transaction) against the unlimited submit (relaxed tag, then the insert)
 *   (c) 16 submits in flight from one user (they take turns on the user's lock) against 16
 *       submits in flight from 16 users
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { countKeyRequest } from '../src/api/rate-limit.js';
import { authenticateKey, createApiKey } from '../src/auth/api-keys.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { NO_HINTS } from '../src/db/notifier.js';
import { createPool, type Pool } from '../src/db/pool.js';
import { submitTask } from '../src/tasks/submit.js';
import { createDatabase, medianOf, ms, sketchTask } from './support.js';

const RUNS = Number(process.env.BENCH_LIMIT_RUNS ?? 2000);
const IN_FLIGHT = 16;
const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const root = await mkdtemp(path.join(os.tmpdir(), 'easel-bench-limits-'));
await chmod(root, 0o755); // as root, PostgreSQL runs as `postgres` and must enter this folder
const server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), log });

async function newUser(pool: Pool, name: string): Promise<string> {
  const id = crypto.randomUUID();
  await pool.query('INSERT INTO users (id, name) VALUES ($1, $2)', [id, name]);
  return id;
}

/** Tasks per second with IN_FLIGHT submits at once, each submit as `userFor(i)`. */
async function submitsPerSecond(pool: Pool, total: number, userFor: (i: number) => string): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) {
        const i = next++;
        await submitTask(pool, NO_HINTS, { ...sketchTask(`c ${i}`, i), userId: userFor(i) }, { maxActiveTasks: 1e9 });
      }
    }),
  );
  return (total / (performance.now() - started)) * 1000;
}

const ratio = (value: number, base: number) => `${(value / base).toFixed(2)}×`;

try {
  const print = (line: string) => console.log(line);
  print(`Easel limits benchmark · node ${process.version} · ${os.cpus().length} cores · embedded PostgreSQL`);
  const pool = createPool(await createDatabase(server.connectionString, 'limits'), { max: IN_FLIGHT + 2 });
  try {
    const userId = await newUser(pool, 'bench');
    const { key, row } = await createApiKey(pool, userId, 'bench');
    const warm = async (fn: () => Promise<unknown>) => {
      for (let i = 0; i < 100; i++) await fn();
    };

    const roundTrip = () => pool.query('SELECT 1');
    const lookup = () => authenticateKey(pool, key);
    const count = () => countKeyRequest(pool, row.id);
    for (const fn of [roundTrip, lookup, count]) await warm(fn);
    const [bare, auth, rate] = [
      await medianOf(RUNS, roundTrip),
      await medianOf(RUNS, lookup),
      await medianOf(RUNS, count),
    ];
    print(
      [
        `(a) per-request rate count, median of ${RUNS}:`,
        `    bare round trip (SELECT 1) ${ms(bare)}; key lookup ${ms(auth)} (${ratio(auth, bare)}); rate upsert ${ms(rate)} (${ratio(rate, bare)})`,
        `    a keyed request's database time: ${ratio(auth + rate, auth)} of the key lookup alone`,
      ].join('\n'),
    );

    // Interleaved, so both sides see the same machine load; each task is canceled (untimed)
    // after its submit, so the user's active count stays put between samples.
    let seed = 0;
    const submitRuns = Math.min(RUNS, 1000);
    const sampleSubmits = async (user: string, maxActiveTasks: number) => {
      const times = { unlimited: [] as number[], limited: [] as number[] };
      for (let i = 0; i < submitRuns + 50; i++) {
        for (const side of ['unlimited', 'limited'] as const) {
          const options = side === 'limited' ? { maxActiveTasks } : {};
          const started = performance.now();
          const outcome = await submitTask(pool, NO_HINTS, { ...sketchTask('s', seed++), userId: user }, options);
          if (i >= 50) times[side].push(performance.now() - started);
          await pool.query(`UPDATE tasks SET status = 'canceled' WHERE id = $1`, [outcome.task.id]);
        }
      }
      const median = (list: number[]) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
      return { unlimited: median(times.unlimited), limited: median(times.limited) };
    };
    const idle = await sampleSubmits(userId, 1000);
    const busy = await newUser(pool, 'bench busy');
    await pool.query(
      `INSERT INTO tasks (id, user_id, kind, provider, model, params, priority, vtime, max_attempts)
       SELECT gen_random_uuid(), $1, 'txt2img', 'sketch', 'sketch-v1', '{"prompt":"p"}', 5, g, 1
       FROM generate_series(1, 998) g`,
      [busy],
    );
    await pool.query('VACUUM ANALYZE tasks');
    const full = await sampleSubmits(busy, 1000);
    print(
      [
        `(b) one submit, sequential, median of ${submitRuns}, limit 1000:`,
        `    user with no other active task: unlimited ${ms(idle.unlimited)}; under the limit ${ms(idle.limited)} (${ratio(idle.limited, idle.unlimited)})`,
        `    user with 998 active tasks (worst case, counts ~1000 index entries): unlimited ${ms(full.unlimited)}; under the limit ${ms(full.limited)} (${ratio(full.limited, full.unlimited)})`,
      ].join('\n'),
    );

    const total = Number(process.env.BENCH_LIMIT_SUBMITS ?? 2000);
    const users = await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => newUser(pool, `bench ${i}`)));
    const one = await newUser(pool, 'bench one');
    const spread = await submitsPerSecond(pool, total, (i) => users[i % IN_FLIGHT]!);
    const single = await submitsPerSecond(pool, total, () => one);
    print(
      [
        `(c) ${total} submits, ${IN_FLIGHT} in flight, under the active-task limit:`,
        `    ${IN_FLIGHT} users ${spread.toFixed(0)} submits/s; one user ${single.toFixed(0)} submits/s (${ratio(single, spread)}: one user's submits take turns)`,
      ].join('\n'),
    );
  } finally {
    await pool.end();
  }
} finally {
  await server.stop();
  await rm(root, { recursive: true, force: true });
}
