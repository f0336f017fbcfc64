import { loadConfig } from '../../config/config.js';
import { migrate } from '../../db/migrate.js';
import { createLogger } from '../../log.js';
import { openDatabase } from '../../runtime/database.js';

export async function runMigrations(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const db = await openDatabase(config, log, { poolSize: 2 });
  try {
    const applied = await migrate(db.pool, log);
    log.info({ applied }, applied.length ? 'migrations applied' : 'database already up to date');
  } finally {
    await db.close();
  }
}
