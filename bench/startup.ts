/**
 * `npx tsx bench/startup.ts [warm runs]`: how long `npm start` takes to answer /healthz.
 *
 *   cold: no dist/ (a fresh checkout): the full TypeScript build, then the start
 *   warm: nothing changed since the last build: the up-to-date check, then the start
 *   edit: one source file changed: the incremental rebuild, then the start
 *
 * `npm start` builds without type checking (tsc --noCheck: with isolatedModules the emit does
 * not depend on types); `npm run build` and `npm run typecheck` check them.
 *
 * Every run uses the same data directory, initialised once beforehand, so the figures are
 * about the build and the start, not about initdb. Prints figures; asserts nothing. On a
 * shared machine the figures move with the load: the CPU time of the build is given beside them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const warmRuns = Number(process.argv[2] ?? 3);
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-startup-'));
await chmod(dataDir, 0o755); // as root, PostgreSQL runs as `postgres` and must enter this folder

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

/** Seconds from `npm start` until /healthz answers 200; then stops it and waits for it to exit. */
async function timeStart(): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  // Its own process group, so the stop reaches npm, its shell and node alike.
  const child = spawn('npm', ['start', '--silent'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), EASEL_DATA_DIR: dataDir, DATABASE_URL: '', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (response) => response.ok,
        () => false,
      );
      if (ok) return (performance.now() - started) / 1000;
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    process.kill(-child.pid!, 'SIGINT');
    await exited;
    // npm may exit before Easel has stopped its PostgreSQL; the next run must start it afresh.
    while (existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** User+system CPU seconds of the build `npm start` runs, for comparing across loads. */
function buildCpuSeconds(): number {
  const result = spawnSync('bash', ['-c', 'TIMEFORMAT=%U+%S; time npm run prestart --silent >/dev/null'], {
    cwd: root,
    encoding: 'utf8',
  });
  const [user, system] = result.stderr.trim().split('\n').at(-1)!.split('+').map(Number);
  return user! + system!;
}

const figure = (label: string, seconds: number[]) =>
  console.log(`${label.padEnd(6)} ${seconds.map((s) => s.toFixed(2)).join(' ')} s`);

const touched = path.join(root, 'src/cli/commands/tasks.ts');
const original = await readFile(touched, 'utf8');
try {
  // Initialise the data directory (initdb) outside the figures.
  await timeStart();

  await rm(path.join(root, 'dist'), { recursive: true, force: true });
  figure('cold', [await timeStart()]);
  const warm: number[] = [];
  for (let run = 0; run < warmRuns; run++) warm.push(await timeStart());
  figure('warm', warm);
  await appendFile(touched, '\n// bench/startup.ts: a change\n');
  figure('edit', [await timeStart()]);
  const rebuilt = (await readFile(path.join(root, 'dist/cli/commands/tasks.js'), 'utf8')).includes('a change');
  console.log(`edit   the changed file was rebuilt: ${rebuilt ? 'yes' : 'NO'}`);
  await writeFile(touched, original);
  await timeStart(); // back to the committed source

  console.log(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${os.cpus().length} cores`,
  );
  console.log(`CPU of npm run prestart: warm ${buildCpuSeconds().toFixed(2)} s`);
  await rm(path.join(root, 'dist'), { recursive: true, force: true });
  console.log(`CPU of npm run prestart: cold ${buildCpuSeconds().toFixed(2)} s`);
} finally {
  await writeFile(touched, original);
  await rm(dataDir, { recursive: true, force: true });
}
