import { loadConfig } from '../../config/config.js';
import { createLogger } from '../../log.js';
import { startEasel, type Roles } from '../../runtime/easel.js';

/**
 * `easel start | api | worker`: run the roles until SIGINT/SIGTERM, then shut down gracefully
 * (stop claiming, let running tasks finish within the grace period, hand back the rest, stop
 * embedded PostgreSQL). A second signal exits at once. Exits non-zero when start-up fails (the
 * error propagates to main) or when the worker gives up on an unreachable database, so that a
 * supervisor set to restart on failure restarts it.
 */
export async function serve(roles: Roles): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const easel = await startEasel(config, log, { roles });
  let stopping = false;
  const stopAndExit = (code: number) => {
    stopping = true;
    easel.stop().then(
      () => process.exit(code),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal }, 'shutting down');
    stopAndExit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  // The worker has logged why; exit 1 so that a supervisor restarts it.
  void easel.worker?.gaveUp.then(() => {
    if (!stopping) stopAndExit(1);
  });
}
