import { loadConfig } from '../../config/config.js';
import { createLogger } from '../../log.js';
import { readRemoteWorkerConfig } from '../../worker/remote/config.js';
import { WorkerTokenRefused } from '../../worker/remote/client.js';
import { RemoteWorker } from '../../worker/remote/remote-worker.js';

/** Exit status when the server refuses the token: a supervisor should not restart into the same refusal. */
export const TOKEN_REFUSED_EXIT = 3;

/**
 * `easel worker --remote URL --token T`: a worker that reaches Easel over HTTP only. Runs until
 * SIGINT/SIGTERM (graceful: running tasks get the grace period, the rest go back uncounted; a
 * second signal exits at once), or until the server refuses the token (exit 3, with one line).
 */
export async function runRemoteWorker(flags: { remote?: string; token?: string }, version: string): Promise<void> {
  const settings = readRemoteWorkerConfig(process.env, flags);
  const { DATABASE_URL: _ignored, ...env } = process.env;
  const config = loadConfig(env);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const worker = new RemoteWorker({ ...settings, previews: config.worker.previews, version, log });
  const refused = (message: string) => {
    process.stderr.write(`easel worker: ${message}; exiting\n`);
    process.exit(TOKEN_REFUSED_EXIT);
  };
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    worker.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  try {
    await worker.start();
  } catch (error) {
    if (error instanceof WorkerTokenRefused) return refused(error.message);
    throw error;
  }
  void worker.finished.then(refused);
}
