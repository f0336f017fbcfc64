/**
 * `npm run bench`: the core's speed on this machine, with embedded PostgreSQL and the sketch
 * provider at zero latency. Prints figures; asserts nothing. Each figure comes with a baseline
 * measured in the same process (a bare round trip or commit), because shared machines are noisy.
 *
 *   (a) dispatch latency: submit committed → adapter started, sequential samples
 *   (b) throughput: submit → succeeded, 10,000 tasks, over HTTP and without it
 *   (c) queue position query with 100,000 tasks queued
 *   (d) claim cost with and without a credential pool
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { Notifier } from '../src/db/notifier.js';
import { ProviderRegistry } from '../src/providers/registry.js';
import { createSketchProvider } from '../src/providers/sketch/index.js';
import type { Provider } from '../src/providers/types.js';
import { startEasel } from '../src/runtime/easel.js';
import { measureDispatch } from './dispatch.js';
import { measurePosition } from './position.js';
import { measureClaim } from './claim.js';
import { durableCommitsPerSecond, submitDirect, submitOverHttp, tasksPerSecond } from './throughput.js';
import { createDatabase } from './support.js';

const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const root = await mkdtemp(path.join(os.tmpdir(), 'easel-bench-'));
await chmod(root, 0o755); // as root, PostgreSQL runs as `postgres` and must enter this folder
const server = await startEmbeddedPostgres({ dataDir: path.join(root, 'postgres'), log });

/** Sketch, with a hook that notes when the adapter starts each task. */
function instrumentedSketch(onStart: (taskId: string) => void): ProviderRegistry {
  const sketch = createSketchProvider();
  const provider: Provider = {
    id: sketch.id,
    models: () => sketch.models(),
    run: (input, ctx) => {
      onStart(input.taskId);
      return sketch.run(input, ctx);
    },
  };
  return new ProviderRegistry([provider]);
}

async function startBenchEasel(
  name: string,
  env: Record<string, string>,
  onStart: (taskId: string) => void = () => {},
) {
  const databaseUrl = await createDatabase(server.connectionString, name);
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    EASEL_DATA_DIR: path.join(root, name),
    PORT: '0',
    LOG_LEVEL: 'warn',
    EASEL_DEFAULT_PROVIDER_CONCURRENCY: '1000',
    ...env,
  });
  return startEasel(config, log, { roles: { api: true, worker: true }, registry: instrumentedSketch(onStart) });
}

try {
  const print = (line: string) => console.log(line);
  print(`Easel core benchmark · node ${process.version} · ${os.cpus().length} cores · embedded PostgreSQL`);

  const starts = new Map<string, number>();
  const dispatchEasel = await startBenchEasel('dispatch', { EASEL_WORKER_CONCURRENCY: '4' }, (id) =>
    starts.set(id, performance.now()),
  );
  try {
    const hints = new Notifier(dispatchEasel.db.connectionString, log);
    const samples = Number(process.env.BENCH_DISPATCH_SAMPLES ?? 1000);
    print(
      await measureDispatch(
        dispatchEasel.db.pool,
        hints,
        starts,
        () => dispatchEasel.worker!.activeTasks === 0,
        samples,
      ),
    );
    await hints.close();
  } finally {
    await dispatchEasel.stop();
  }

  const tasks = Number(process.env.BENCH_TASKS ?? 10_000);
  const overHttp = await startBenchEasel('throughput_http', { EASEL_WORKER_CONCURRENCY: '64' });
  let httpRate: number;
  let commitRate: number;
  try {
    httpRate = await tasksPerSecond(overHttp.db.pool, tasks, () => submitOverHttp(overHttp.url!, tasks));
    commitRate = await durableCommitsPerSecond(overHttp.db.pool);
  } finally {
    await overHttp.stop();
  }
  const direct = await startBenchEasel('throughput_direct', { EASEL_WORKER_CONCURRENCY: '64' });
  let directRate: number;
  try {
    const hints = new Notifier(direct.db.connectionString, log);
    directRate = await tasksPerSecond(direct.db.pool, tasks, () => submitDirect(direct.db.pool, hints, tasks));
    await hints.close();
  } finally {
    await direct.stop();
  }
  print(
    [
      `(b) throughput, submit → succeeded, ${tasks} tasks of 64×64, 64 submits in flight, API + worker in one process:`,
      `    over HTTP (client on its own thread) ${httpRate.toFixed(0)} tasks/s   (target ≥ 1,000 tasks/s)`,
      `    same pipeline without HTTP ${directRate.toFixed(0)} tasks/s; HTTP costs ${(directRate / httpRate).toFixed(1)}× in throughput`,
      `    baseline: ${commitRate.toFixed(0)} single-row durable commits/s; one task over HTTP costs ${(commitRate / httpRate).toFixed(1)} of them`,
    ].join('\n'),
  );

  print(
    await measurePosition(
      await createDatabase(server.connectionString, 'position'),
      Number(process.env.BENCH_QUEUED ?? 100_000),
    ),
  );
  print(
    await measureClaim(
      await createDatabase(server.connectionString, 'claim'),
      Number(process.env.BENCH_CLAIMS ?? 2000),
    ),
  );
} finally {
  await server.stop();
  await rm(root, { recursive: true, force: true });
}
