import type { Command } from 'commander';
import { clientFromEnv } from './client.js';
import {
  adminStats,
  adminTasks,
  adminUsers,
  clearQueue,
  listDeadLetters,
  purgeDeadLetters,
  retryDeadLetters,
  sinceOption,
} from './commands/admin.js';
import { examples, integerFrom } from './options.js';

const ADMIN_KEY_NOTE =
  "\nAdmins only: with EASEL_API_KEY set, it must be an admin's key; without it, local mode acts as the local admin.\n";

/** The dead-letter filters, shared by ls, retry and purge. */
function deadLetterFilters(command: Command): Command {
  return command
    .option('--provider <id>', 'only this provider')
    .option('--code <error-code>', 'only tasks that failed with this error code')
    .option('--user <id>', "only this user's tasks")
    .option('--since <time>', 'only tasks created since: RFC 3339, or a span such as 30m, 24h, 7d', sinceOption);
}

/** `easel admin …` and `easel queue clear`: the /v1/admin/ API. */
export function addAdminCommands(program: Command, queue: Command): void {
  queue
    .command('clear')
    .description('cancel every queued task (not running ones); without --yes, only say how many would go')
    .option('--provider <id>', "only this provider's queued tasks")
    .option('--yes', 'really cancel them')
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples('easel queue clear', 'easel queue clear --provider replicate --yes') + ADMIN_KEY_NOTE,
    )
    .action((options) => clearQueue(clientFromEnv(), options));

  const admin = program
    .command('admin')
    .description("admin views over every user's tasks, dead letters, queue statistics and users")
    .addHelpText(
      'after',
      examples('easel admin tasks --status failed', 'easel admin dead ls', 'easel admin stats') + ADMIN_KEY_NOTE,
    );

  admin
    .command('tasks')
    .description("every user's tasks, newest first, a page at a time")
    .option('--user <id>', "only this user's tasks")
    .option('--status <status>', 'only tasks in this status (queued, running, succeeded, failed, canceled)')
    .option('--provider <id>', 'only this provider')
    .option('--since <time>', 'only tasks created since: RFC 3339, or a span such as 30m, 24h, 7d', sinceOption)
    .option('--limit <n>', 'how many, from 1 to 100 (default 20)', integerFrom(1, 100))
    .option('--cursor <id>', 'continue after this task (the last line of the previous page says which)')
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples('easel admin tasks --user 0193… --status failed', 'easel admin tasks --since 24h --json'),
    )
    .action((options) => adminTasks(clientFromEnv(), options));

  const dead = admin
    .command('dead')
    .description('dead letters: failed tasks, to list, queue again or purge')
    .addHelpText(
      'after',
      examples(
        'easel admin dead ls --provider replicate',
        'easel admin dead retry --code TIMEOUT',
        'easel admin dead purge --yes',
      ),
    );
  deadLetterFilters(dead.command('ls').description('list dead letters, newest first'))
    .option('--limit <n>', 'how many, from 1 to 100 (default 20)', integerFrom(1, 100))
    .option('--cursor <id>', 'continue after this task')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel admin dead ls', 'easel admin dead ls --provider replicate --json'))
    .action((options) => listDeadLetters(clientFromEnv(), options));
  deadLetterFilters(
    dead
      .command('retry')
      .description('queue dead letters again with fresh attempts: these ids, or those matching the filters')
      .argument('[ids...]', 'task ids (or use the filters)'),
  )
    .option('--max <n>', 'by filter: at most this many per run (default 1000)', integerFrom(1, 10_000))
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples('easel admin dead retry 0193a0c4-…', 'easel admin dead retry --provider replicate --code TIMEOUT'),
    )
    .action((ids: string[], options) => retryDeadLetters(clientFromEnv(), ids, options));
  deadLetterFilters(
    dead
      .command('purge')
      .description('delete dead letters and their images for good; without --yes, only say how many would go')
      .argument('[ids...]', 'task ids (or use the filters; none: every dead letter)'),
  )
    .option('--max <n>', 'by filter: at most this many per run (default 1000)', integerFrom(1, 10_000))
    .option('--yes', 'really delete them')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel admin dead purge', 'easel admin dead purge --provider replicate --yes'))
    .action((ids: string[], options) => purgeDeadLetters(clientFromEnv(), ids, options));

  admin
    .command('stats')
    .description('queued, running, retrying and dead per provider and priority; processed and failed per day')
    .option('--days <n>', 'days of history, 1 to 90 (default 7)', integerFrom(1, 90))
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel admin stats', 'easel admin stats --days 30 --json'))
    .action((options) => adminStats(clientFromEnv(), options));

  admin
    .command('users')
    .description('users with their task counts by status')
    .option('--limit <n>', 'how many, from 1 to 100 (default 20)', integerFrom(1, 100))
    .option('--cursor <id>', 'continue after this user')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel admin users', 'easel admin users --json'))
    .action((options) => adminUsers(clientFromEnv(), options));
}
