import type { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../../config/config.js';
import { migrate } from '../../db/migrate.js';
import { createLogger } from '../../log.js';
import { collectGarbage, gcSkipped, type GcReport } from '../../retention/gc.js';
import { openDatabase } from '../../runtime/database.js';
import { createStorage } from '../../storage/create.js';
import { examples } from '../options.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);

/**
 * `easel storage gc`: one retention pass now, on this machine, straight against the database and
 * storage (like `easel migrate`), not through the API: a pass over a long history may outlast
 * any HTTP timeout, and it must work while no API runs. It takes the same advisory lock as the
 * workers' periodic gc, so it never runs beside one.
 */
export async function runStorageGc(options: { dryRun?: boolean; json?: boolean }): Promise<void> {
  const config = loadConfig();
  // Logs go to stderr so --json leaves stdout to the report.
  const log = createLogger(
    { level: config.logLevel, format: options.json ? 'json' : config.logFormat },
    pino.destination(2),
  );
  const db = await openDatabase(config, log, { poolSize: 3 });
  try {
    await migrate(db.pool, log);
    const outcome = await collectGarbage(db.pool, await createStorage(config.storage, config.dataDir), {
      retention: config.retention,
      dryRun: options.dryRun ?? false,
      onStorageError: (key, error) => log.warn({ err: error, key }, 'could not delete an object; it stays queued'),
    });
    if (gcSkipped(outcome)) {
      process.stderr.write('easel: another gc is running (a worker or another `easel storage gc`); try again later\n');
      process.exitCode = 1;
      return;
    }
    if (options.json) print(JSON.stringify(outcome, null, 2));
    else printReport(outcome, config.retention);
    // A delete storage refused is left queued; a non-zero exit lets cron notice.
    if (outcome.delete_failures > 0) process.exitCode = 1;
  } finally {
    await db.close();
  }
}

function printReport(report: GcReport, retention: { imageRetentionDays: number; taskRetentionDays: number }): void {
  const verb = report.dry_run ? 'would' : 'did';
  const days = (value: number) => (value > 0 ? `${value} days` : 'forever');
  print(`retention: images ${days(retention.imageRetentionDays)}, tasks ${days(retention.taskRetentionDays)}`);
  if (report.dry_run) {
    for (const id of report.sample.images) print(`image   ${id}`);
    for (const id of report.sample.tasks) print(`task    ${id}`);
    for (const id of report.sample.uploads) print(`upload  ${id}`);
    for (const key of report.sample.orphans) print(`orphan  ${key}`);
  }
  print(
    `${report.dry_run ? 'dry run: ' : ''}${verb} expire ${report.images_expired} images, delete ${report.tasks_deleted} tasks ` +
      `(trim ${report.tasks_kept_for_billing} kept for their billing records), ${report.uploads_deleted} uploads, ` +
      `${report.orphans_deleted} orphan objects, and finish ${report.leftover_deletions} queued deletions`,
  );
  if (!report.dry_run) print(`objects deleted: ${report.objects_deleted}; deletes refused: ${report.delete_failures}`);
}

/** `easel storage …`: what is stored, and gc. */
export function addStorageCommands(program: Command): void {
  const storage = program
    .command('storage')
    .description('stored images and inputs: retention and garbage collection')
    .addHelpText('after', examples('easel storage gc --dry-run', 'easel storage gc --json'));
  storage
    .command('gc')
    .description(
      'expire images past EASEL_IMAGE_RETENTION_DAYS, delete tasks past EASEL_TASK_RETENTION_DAYS, old unused uploads and orphan objects',
    )
    .option('--dry-run', 'print what would go and change nothing')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      examples('easel storage gc --dry-run', 'EASEL_IMAGE_RETENTION_DAYS=30 easel storage gc --json') +
        '\nRuns against DATABASE_URL (or the embedded PostgreSQL) and the configured storage directly.\nExits 1 when another gc is running or some delete was refused (it stays queued for the next run).\n',
    )
    .action((options: { dryRun?: boolean; json?: boolean }) => runStorageGc(options));
}
