import { loadConfig } from '../../config/config.js';
import { createLogger } from '../../log.js';
import { startEasel, type Roles } from '../../runtime/easel.js';

/**
 * `easel start | api | worker`: run the roles until SIGINT/SIGTERM, then shut down gracefully
 * (stop claiming, let running tasks finish within the grace period, hand back the rest, stop
 * embedded PostgreSQL). A second signal exits at once.
 */
export async function serve(roles: Roles): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const easel = await startEasel(config, log, { roles });
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    easel.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
