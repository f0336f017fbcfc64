import type { Logger } from 'pino';
import type { EmbeddedPostgres, RunningServer } from './embedded-postgres.js';
import { hasExited, stopGuardedPostgres } from './postgres-guard.js';
import { runningPostmaster } from './postmaster-pid.js';

/** How often every process that uses the server checks that it is still there. */
const WATCH_INTERVAL_MS = 1000;

/**
 * Keeps a server running on `dataDir` for as long as this process uses it. Each process watches
 * the server, whether it started it (its guard exited) or adopted it (the postmaster named in
 * postmaster.pid is gone). When it is gone, `restart` runs under the start lock: the first process
 * to get the lock starts the server again on the same port and owns it; the others adopt that.
 * The returned connection string therefore stays valid across an owner's exit.
 *
 * The watch timer is unref'd: it never keeps a process alive by itself.
 */
export function superviseEmbeddedPostgres(options: {
  dataDir: string;
  first: RunningServer;
  restart: () => Promise<RunningServer>;
  log: Logger;
}): EmbeddedPostgres {
  const { dataDir, first, restart, log } = options;
  let current = first;
  let stopped = false;
  let warnedAboutPort = false;
  let timer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;

  const isServing = async (): Promise<boolean> => {
    if (current.server) return !hasExited(current.server);
    const postmaster = await runningPostmaster(dataDir);
    if (postmaster && postmaster.port !== first.port && !warnedAboutPort) {
      warnedAboutPort = true;
      log.error(
        { port: postmaster.port, expected: first.port },
        'embedded PostgreSQL now runs on another port than this process connects to; restart this process',
      );
    }
    return postmaster !== undefined;
  };

  const check = async () => {
    if (await isServing()) return;
    if (stopped) return;
    log.warn({ owned: current.server !== undefined }, 'embedded PostgreSQL is gone; starting or adopting it again');
    try {
      current = await restart();
      if (current.port !== first.port) {
        log.error(
          { port: current.port, expected: first.port },
          'embedded PostgreSQL came back on another port than this process connects to; restart this process',
        );
      } else {
        log.info({ port: current.port, owned: current.server !== undefined }, 'embedded PostgreSQL is back');
      }
    } catch (error) {
      log.error({ err: error }, 'could not bring embedded PostgreSQL back; trying again');
    }
  };

  const schedule = () => {
    timer = setTimeout(() => {
      checking = check().finally(() => {
        checking = undefined;
        if (!stopped) schedule();
      });
    }, WATCH_INTERVAL_MS);
    timer.unref();
  };
  schedule();

  let stopping: Promise<void> | undefined;
  return {
    connectionString: first.connectionString,
    port: first.port,
    get owned() {
      return current.server !== undefined;
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        clearTimeout(timer);
        await checking; // a restart under way finishes first, so a server it starts is stopped too
        if (current.server) await stopGuardedPostgres(current.server, log);
      })();
      return stopping;
    },
  };
}
