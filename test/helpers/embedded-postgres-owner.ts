/**
 * A separate process that runs startEmbeddedPostgres on the data directory given as its
 * argument, prints one JSON line ({ port, owned, connectionString }), and stays up until
 * SIGTERM (graceful stop) or SIGKILL (the guard alone stops the server).
 */
import pino from 'pino';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';

const server = await startEmbeddedPostgres({ dataDir: process.argv[2]!, log: pino({ level: 'silent' }) });
process.stdout.write(
  `${JSON.stringify({ port: server.port, owned: server.owned, connectionString: server.connectionString })}\n`,
);
const keepAlive = setInterval(() => undefined, 60_000);
process.once('SIGTERM', () => {
  clearInterval(keepAlive);
  void server.stop().then(() => process.exit(0));
});
