import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { superviseEmbeddedPostgres } from './embedded-postgres-supervisor.js';
import {
  initialiseCluster,
  isInitialised,
  passwordFile,
  postgresBinaries,
  POSTGRES_USER,
  serverUser,
} from './postgres-cluster.js';
import { spawnGuardedPostgres, type GuardedPostgres } from './postgres-guard.js';
import { removeStalePidFile, runningPostmaster, sameDirectory } from './postmaster-pid.js';
import { withStartLock } from './start-lock.js';
import { makeDirectories } from '../fs/make-directories.js';

export interface EmbeddedPostgres {
  connectionString: string;
  port: number;
  /**
   * False while another Easel process on this machine runs the server on this data dir. It
   * becomes true if that process goes away and this one takes the server over.
   */
  readonly owned: boolean;
  /** Stops watching the server, and stops the server if this process runs it. Idempotent. */
  stop(): Promise<void>;
}

/** One server on the data directory, as this process found it: its own (`server`) or adopted. */
export interface RunningServer {
  connectionString: string;
  port: number;
  server?: GuardedPostgres;
}

/** How long an adopter waits for a server that is starting up or shutting down to settle. */
const SETTLE_TIMEOUT_MS = 30_000;

/**
 * A real PostgreSQL from the `embedded-postgres` package's binaries, data in `dataDir`,
 * listening on loopback only. Runs as the `postgres` system user when we are root (PostgreSQL
 * refuses root), and never outlives the process that started it (see postgres-guard.ts).
 *
 * Several Easel processes may share a data directory (`easel api` and `easel worker`): start-up
 * is serialised by a lock, the first starts the server and the others adopt it. Every one of them
 * keeps watching it; when its owner goes away, one adopter starts it again on the same port (kept
 * in `<dataDir>.port`), so every process's connection string keeps working.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number | undefined;
  log: Logger;
}): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const log = options.log;
  await makeDirectories(path.dirname(dataDir));
  const adoptOrStartLocked = () => withStartLock(dataDir, () => adoptOrStart(dataDir, options.port, log), { log });
  return superviseEmbeddedPostgres({ dataDir, first: await adoptOrStartLocked(), restart: adoptOrStartLocked, log });
}

/** Call under the start lock: no other Easel process is starting a server on `dataDir` meanwhile. */
async function adoptOrStart(dataDir: string, port: number | undefined, log: Logger): Promise<RunningServer> {
  const adopted = await adoptRunningServer(dataDir, log);
  if (adopted) return adopted;
  const runAs = await serverUser(dataDir);
  const binaries = await postgresBinaries();
  if (!isInitialised(dataDir)) {
    log.info({ dataDir }, 'initialising embedded PostgreSQL data directory');
    await initialiseCluster(binaries.initdb, dataDir, runAs);
  }
  const password = (await readFile(passwordFile(dataDir), 'utf8')).trim();
  await removeStalePidFile(dataDir, log);

  const ports = port !== undefined ? [port] : [await previousPort(dataDir), undefined, undefined, undefined];
  for (const [index, candidate] of ports.entries()) {
    const chosen = candidate ?? (await freePort());
    const server = spawnGuardedPostgres({
      postgresBinary: binaries.postgres,
      args: [
        '-D',
        dataDir,
        '-p',
        String(chosen),
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
      if (busy && index < ports.length - 1) {
        if (candidate !== undefined)
          log.warn({ port: candidate }, 'the embedded PostgreSQL port is taken; using another');
        continue;
      }
      throw error;
    }
    await writeFile(portFile(dataDir), `${chosen}\n`);
    return { connectionString: connectionString(dataDir, chosen, password), port: chosen, server };
  }
  throw new Error('unreachable: the last port candidate either starts or throws');
}

/**
 * The port is kept beside the data directory and reused, so that a server started again (by
 * this process, or by an adopter after its owner exited) is where every connection string says.
 */
function portFile(dataDir: string): string {
  return `${dataDir}.port`;
}

async function previousPort(dataDir: string): Promise<number | undefined> {
  const port = Number((await readFile(portFile(dataDir), 'utf8').catch(() => '')).trim());
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}

/** Unix sockets have a ~107-byte path limit; a deep data dir falls back to TCP alone. */
function socketDirectory(dataDir: string): string | undefined {
  return `${dataDir}/.s.PGSQL.65535`.length < 100 ? dataDir : undefined;
}

/** Through the data dir's Unix socket when there is one, else loopback TCP (always on too). */
function connectionString(dataDir: string, port: number, password: string): string {
  const url = `postgres://${POSTGRES_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const socket = socketDirectory(dataDir);
  return socket ? `${url}?host=${encodeURIComponent(socket)}` : url;
}

/**
 * The server another process runs on `dataDir`, if any. One that is still starting up or already
 * shutting down is waited for: it is adopted once ready, or started anew once gone.
 */
async function adoptRunningServer(dataDir: string, log: Logger): Promise<RunningServer | undefined> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const postmaster = await runningPostmaster(dataDir);
    if (!postmaster) return undefined;
    const password = (await readFile(passwordFile(dataDir), 'utf8')).trim();
    const url = connectionString(dataDir, postmaster.port, password);
    const settled = await serverDataDirectory(url).catch((error: Error & { code?: string }) => {
      const unsettled = error.code === '57P03' || error.code === 'ECONNREFUSED' || error.code === 'ENOENT';
      if (unsettled && Date.now() < deadline) return undefined;
      throw new Error(
        `a postgres process (pid ${postmaster.pid}) holds ${dataDir} but cannot be used: ${error.message}`,
      );
    });
    if (settled === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    if (!(await sameDirectory(settled, dataDir))) return undefined;
    log.info(
      { postgresPid: postmaster.pid, port: postmaster.port },
      'using the embedded PostgreSQL another Easel process runs',
    );
    return { connectionString: url, port: postmaster.port };
  }
}

async function serverDataDirectory(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    return rows[0]!.data_directory;
  } finally {
    await client.end().catch(() => undefined);
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
