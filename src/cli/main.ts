#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import 'dotenv/config';
import { ConfigError } from '../config/env.js';
import { CliError, clientFromEnv } from './client.js';
import { generate } from './commands/generate.js';
import { runMigrations } from './commands/migrate.js';
import { serve } from './commands/serve.js';
import { cancelTask, listTasks, queueStatus, retryTask, showTask } from './commands/tasks.js';

const integer = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new InvalidArgumentError('not a whole number');
  return parsed;
};

/** `--option key=value` pairs for provider_options; values parse as JSON when they can. */
const collectOption = (pair: string, all: Record<string, unknown> = {}): Record<string, unknown> => {
  const at = pair.indexOf('=');
  if (at < 1) throw new InvalidArgumentError('expected key=value');
  const raw = pair.slice(at + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string
  }
  return { ...all, [pair.slice(0, at)]: value };
};

const program = new Command('easel').description('Self-hosted image-generation gateway').showHelpAfterError();

program
  .command('start')
  .description('run the API, workers and (without DATABASE_URL) embedded PostgreSQL')
  .action(() => serve({ api: true, worker: true }));
program
  .command('api')
  .description('run only the HTTP API')
  .action(() => serve({ api: true, worker: false }));
program
  .command('worker')
  .description('run only a worker')
  .action(() => serve({ api: false, worker: true }));
program.command('migrate').description('apply database migrations').action(runMigrations);

program
  .command('generate')
  .description('generate images and save them, with live progress')
  .argument('<prompt>')
  .option('--provider <id>')
  .option('--model <id>')
  .option('--width <px>', 'image width', integer)
  .option('--height <px>', 'image height', integer)
  .option('--steps <n>', 'sampling steps', integer)
  .option('--n <count>', 'number of images', integer)
  .option('--seed <n>', 'seed', integer)
  .option('--priority <0-10>', 'higher runs first', integer)
  .option('--negative <text>', 'negative prompt')
  .addOption(new Option('--option <key=value>', 'provider option (repeatable)').argParser(collectOption))
  .option('--out <dir>', 'where to save images', '.')
  .action(async (prompt: string, options) => {
    await generate(clientFromEnv(), prompt, options);
  });

const tasks = program.command('tasks').description('list and manage tasks');
tasks
  .command('ls')
  .option('--status <status>')
  .option('--provider <id>')
  .option('--limit <n>', 'how many', integer)
  .action((options) => listTasks(clientFromEnv(), options));
tasks
  .command('show')
  .argument('<id>')
  .action((id: string) => showTask(clientFromEnv(), id));
tasks
  .command('cancel')
  .argument('<id>')
  .action((id: string) => cancelTask(clientFromEnv(), id));
tasks
  .command('retry')
  .argument('<id>')
  .action((id: string) => retryTask(clientFromEnv(), id));

program
  .command('queue')
  .description('queue overview')
  .command('status')
  .action(() => queueStatus(clientFromEnv()));

program.parseAsync().catch((error: unknown) => {
  if (error instanceof CliError || error instanceof ConfigError) {
    process.stderr.write(`easel: ${error.message}\n`);
  } else {
    process.stderr.write(`easel: ${(error as Error).stack ?? String(error)}\n`);
  }
  process.exit(1);
});
