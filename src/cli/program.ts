import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/config.js';
import { ConfigError } from '../config/env.js';
import { clientFromEnv } from './client.js';
import {
  addCredential,
  disableCredential,
  enableCredential,
  listCredentials,
  removeCredential,
} from './commands/credentials.js';
import { addAdminCommands } from './admin-program.js';
import { generate } from './commands/generate.js';
import { addCredits, showBalance } from './commands/credits.js';
import { addBillingCommands } from './commands/billing.js';
import { addStorageCommands } from './commands/storage.js';
import { createKey, listKeys, printGeneratedKey, revokeKey } from './commands/keys.js';
import { runMigrations } from './commands/migrate.js';
import { serve } from './commands/serve.js';
import { runRemoteWorker } from './commands/remote-worker.js';
import { createWorkerToken, listWorkerTokens, revokeWorkerToken } from './commands/worker-tokens.js';
import { cancelTask, listTasks, queueStatus, retryTask, showTask } from './commands/tasks.js';
import { addUser, listUsers, removeUser } from './commands/users.js';
import type { ErrorContext } from './explain-error.js';
import { collectOption, examples, fraction, integer, integerFrom } from './options.js';
import { OUTPUT_FORMATS } from '../domain/output-format.js';
import type { Roles } from '../runtime/easel.js';

// src/cli/program.ts and dist/cli/program.js both sit two levels below the package root.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/**
 * Load the configuration before a server command starts, so a bad setting (or combination of
 * settings) stops it with a ConfigError, and so a later connection or listen error can be
 * tied to the setting it concerns.
 */
function checkServerConfig(errorContext: ErrorContext): void {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError((error as Error).message, { cause: error });
  }
  errorContext.server = { host: config.host, port: config.port, databaseUrl: config.databaseUrl };
}

const startServer = (errorContext: ErrorContext, roles: Roles) => async () => {
  checkServerConfig(errorContext);
  await serve(roles);
};

/**
 * The whole command tree as a value: the entry point parses argv with it, and tests read every
 * command's help from it without starting a process. `errorContext` is filled in by the server
 * commands so the entry point's error handler can name the setting at fault.
 */
export function buildProgram(errorContext: ErrorContext): Command {
  const program = new Command('easel')
    .description('Self-hosted image-generation gateway: one queued HTTP API with live progress across providers.')
    .version(version, '-V, --version', 'print the version')
    .option('--debug', 'print the stack trace of an error (as LOG_LEVEL=debug does)')
    // A usage error is one line like every other error; the help is a flag away. Subcommands
    // inherit this, so it comes before them.
    .configureOutput({
      outputError: (message, write) => write(`easel: ${message.trim().replace(/^error: /, '')} (see --help)\n`),
    })
    .addHelpText(
      'after',
      examples(
        'easel start',
        'easel generate "a lighthouse at dusk" --seed 7 --out out',
        'easel tasks ls --status running',
        'easel <command> --help',
      ) +
        '\nSettings come from the environment or .env (see .env.example); EASEL_URL points the client\ncommands at a server other than http://127.0.0.1:$PORT.\n',
    );

  program
    .command('start')
    .description('run the API and a worker, with embedded PostgreSQL unless DATABASE_URL is set')
    .addHelpText(
      'after',
      examples('easel start', 'PORT=9000 easel start', 'DATABASE_URL=postgres://easel@db/easel easel start'),
    )
    .action(startServer(errorContext, { api: true, worker: true }));
  program
    .command('api')
    .description('run only the HTTP API (several may share one DATABASE_URL)')
    .addHelpText('after', examples('DATABASE_URL=postgres://easel@db/easel HOST=0.0.0.0 easel api'))
    .action(startServer(errorContext, { api: true, worker: false }));
  program
    .command('worker')
    .description(
      'run only a worker, which claims tasks from the queue in DATABASE_URL; with --remote, one that reaches an Easel server over HTTP only (a GPU machine)',
    )
    .option('--remote <url>', 'the Easel server to work for, over HTTP (or EASEL_REMOTE_URL); no database access')
    .option('--token <token>', 'with --remote: a worker token, easel_wk_… (or EASEL_WORKER_TOKEN)')
    .addHelpText(
      'after',
      examples(
        'DATABASE_URL=postgres://easel@db/easel EASEL_WORKER_CONCURRENCY=4 easel worker',
        'A1111_URLS=http://127.0.0.1:7860 easel worker --remote https://easel.example --token easel_wk_…',
      ),
    )
    .action(async (options: { remote?: string; token?: string }) => {
      if (options.remote !== undefined || process.env.EASEL_REMOTE_URL) return runRemoteWorker(options, version);
      if (options.token !== undefined) throw new ConfigError('--token goes with --remote');
      return startServer(errorContext, { api: false, worker: true })();
    });
  program
    .command('migrate')
    .description('apply database migrations (start, api and worker do this too)')
    .addHelpText('after', examples('DATABASE_URL=postgres://easel@db/easel easel migrate'))
    .action(async () => {
      checkServerConfig(errorContext);
      await runMigrations();
    });

  program
    .command('generate')
    .description('submit a task, follow its progress live and save its images')
    .argument('<prompt>', 'what to draw')
    .option('--provider <id>', 'provider to run it (default: EASEL_DEFAULT_PROVIDER)')
    .option('--model <id>', "model of the provider (default: the provider's first); alone, a route name or a model id")
    .option('--width <px>', 'image width', integer)
    .option('--height <px>', 'image height', integer)
    .option('--steps <n>', 'sampling steps', integer)
    .option('--n <count>', 'number of images', integer)
    .option('--seed <n>', 'seed, for the same image again', integer)
    .option('--priority <0-10>', 'higher runs first', integer)
    .option('--negative <text>', 'negative prompt')
    .addOption(new Option('--option <key=value>', 'provider option (repeatable)').argParser(collectOption))
    .option(
      '--image <file|url>',
      'img2img: start from this image (a file is uploaded; data: and upload:<id> pass through)',
    )
    .option('--strength <0-1>', 'img2img: how far to move from the image, 0–1 (default 0.75)', fraction)
    .addOption(
      new Option('--format <format>', "store the images as png, webp or jpeg (default: the server's)").choices(
        OUTPUT_FORMATS,
      ),
    )
    .option('--quality <1-100>', "jpeg or webp quality (default: the server's, 90)", integerFrom(1, 100))
    .option('--out <dir>', 'where to save images (created if missing)', '.')
    .option('--json', 'print the finished task as JSON on stdout (progress still goes to stderr)')
    .addHelpText(
      'after',
      examples(
        'easel generate "a lighthouse at dusk" --seed 7 --out out',
        'easel generate "as a watercolour" --image ./photo.png --strength 0.6',
        'easel generate "a red kite" --n 4 --width 512 --height 512 --priority 8',
        'easel generate "slow on purpose" --option delay_ms=5000',
        'easel generate "a fox" --format webp --quality 80',
        'easel generate "a fox" --json | jq .images',
      ) +
        '\nCtrl-C leaves the task running and tells its id; a second Ctrl-C within 3 s cancels it.\nExits 1 when the task does not succeed, 130 when interrupted.\n',
    )
    .action(async (prompt: string, options) => {
      await generate(clientFromEnv(), prompt, options);
    });

  const tasks = program
    .command('tasks')
    .description('list and manage tasks')
    .addHelpText('after', examples('easel tasks ls', 'easel tasks show <id>', 'easel tasks cancel <id>'));
  tasks
    .command('ls')
    .description('list tasks, newest first, a page at a time')
    .option('--status <status>', 'only tasks in this status (queued, running, succeeded, failed, canceled)')
    .option('--provider <id>', 'only tasks of this provider')
    .option('--limit <n>', 'how many, from 1 to 100 (default 20)', integerFrom(1, 100))
    .option('--cursor <id>', 'continue after this task (the last line of the previous page says which)')
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples('easel tasks ls --status failed --limit 50', 'easel tasks ls --cursor <id>', 'easel tasks ls --json'),
    )
    .action((options) => listTasks(clientFromEnv(), options));
  tasks
    .command('show')
    .description('print one task as JSON')
    .argument('<id>', 'task id')
    .option('--json', 'the same (show always prints JSON)')
    .addHelpText('after', examples('easel tasks show 0193a0c4-…'))
    .action((id: string) => showTask(clientFromEnv(), id));
  tasks
    .command('cancel')
    .description('cancel a queued or running task')
    .argument('<id>', 'task id')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel tasks cancel 0193a0c4-…'))
    .action((id: string, options) => cancelTask(clientFromEnv(), id, options));
  tasks
    .command('retry')
    .description('queue a failed or canceled task again')
    .argument('<id>', 'task id')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel tasks retry 0193a0c4-…'))
    .action((id: string, options) => retryTask(clientFromEnv(), id, options));

  const queue = program
    .command('queue')
    .description('queue overview')
    .addHelpText('after', examples('easel queue status'));
  queue
    .command('status')
    .description('queued and running tasks per provider, and live workers')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel queue status', 'easel queue status --json'))
    .action((options) => queueStatus(clientFromEnv(), options));

  const credentials = program
    .command('credentials')
    .description('manage the provider credentials (API tokens) tasks run with; the server must be on this machine')
    .addHelpText(
      'after',
      examples(
        'easel credentials add replicate --label team < token.txt',
        'easel credentials ls',
        'easel credentials disable <id> --reason "leaked"',
      ),
    );
  credentials
    .command('add')
    .description('store a provider secret, encrypted; it is read from stdin or --from-env, never from the command line')
    .argument('<provider>', 'provider id, e.g. replicate, huggingface, openai')
    .option('--from-env <VAR>', 'read the secret from this environment variable instead of stdin')
    .option('--label <text>', 'a name for people (default: the variable, or the date)')
    .option('--concurrency <n>', 'tasks it may run at once (default 1)', integerFrom(1, 10_000))
    .option('--daily-limit <n>', 'uses per day (default: no limit)', integerFrom(1, 100_000_000))
    .option('--reset-hour <0-23>', 'UTC hour its day starts (default 0)', integerFrom(0, 23))
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples(
        'easel credentials add replicate < token.txt',
        'printf %s "$HF_TOKEN" | easel credentials add huggingface --label spare --daily-limit 100',
        'easel credentials add openai --from-env OPENAI_API_KEY --concurrency 4',
      ) + '\nThe same secret twice for one provider is refused (CREDENTIAL_EXISTS) and names the stored one.\n',
    )
    .action((provider: string, options) => addCredential(clientFromEnv(), provider, options));
  credentials
    .command('ls')
    .description('list credentials: masked secret, state, usage today, cooldown and last error')
    .option('--provider <id>', 'only this provider')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel credentials ls', 'easel credentials ls --provider huggingface --json'))
    .action((options) => listCredentials(clientFromEnv(), options));
  credentials
    .command('disable')
    .description('take a credential out of service until it is enabled again')
    .argument('<id>', 'credential id')
    .option('--reason <text>', 'why, shown in ls (default: disabled by an admin)')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel credentials disable 0193a0c4-… --reason "rotating"'))
    .action((id: string, options) => disableCredential(clientFromEnv(), id, options));
  credentials
    .command('enable')
    .description('put a credential back in service (clears its disable reason and any cooldown)')
    .argument('<id>', 'credential id')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel credentials enable 0193a0c4-…'))
    .action((id: string, options) => enableCredential(clientFromEnv(), id, options));
  credentials
    .command('rm')
    .description('delete a credential and its encrypted secret')
    .argument('<id>', 'credential id')
    .addHelpText('after', examples('easel credentials rm 0193a0c4-…'))
    .action((id: string) => removeCredential(clientFromEnv(), id));

  addAdminCommands(program, queue);
  const credits = program
    .command('credits')
    .description("users' credit balances: top up and adjust (admin), show your balance")
    .addHelpText('after', examples('easel credits add <user-id> 10 --reason "invoice 42"', 'easel credits balance'));
  credits
    .command('add')
    .description('top up a user (or adjust with --adjustment; negative amounts take credits away)')
    .argument('<user-id>', 'the user id')
    .argument('<amount>', 'credits, at most 6 decimals')
    .requiredOption('--reason <text>', 'why, kept in the ledger')
    .option('--adjustment', 'a signed adjustment instead of a top-up')
    .option('--idempotency-key <key>', 'repeat an earlier command safely: the same key credits once')
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples(
        'easel credits add 0193a0c4-… 10 --reason "invoice 42"',
        'easel credits add 0193a0c4-… -- -2.5 --adjustment --reason "refund of a test charge"',
      ),
    )
    .action((userId: string, amount: string, options) => addCredits(clientFromEnv(), userId, amount, options));
  credits
    .command('balance')
    .description('your balance, the credits held for unfinished tasks, and what is available')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel credits balance', 'easel credits balance --json'))
    .action((options) => showBalance(clientFromEnv(), options));

  addUserCommands(program);
  addBillingCommands(program);
  addStorageCommands(program);
  return program;
}

/** `easel users …` and `easel keys …`: the client sends EASEL_API_KEY (an admin's, for users). */
function addUserCommands(program: Command): void {
  const users = program
    .command('users')
    .description("manage users (needs an admin's EASEL_API_KEY, or local mode on this machine)")
    .addHelpText(
      'after',
      examples('easel users add Ada --email ada@example.com', 'easel users ls', 'easel users rm ada@example.com'),
    );
  users
    .command('add')
    .description('create a user')
    .argument('<name>', 'a name for people')
    .option('--email <email>', 'unique among live users; lets you name the user by email later')
    .option('--admin', 'make an admin (manages users, keys, credentials and any task)')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel users add Ada --email ada@example.com', 'easel users add Ops --admin --json'))
    .action((name: string, options) => addUser(clientFromEnv(), name, options));
  users
    .command('ls')
    .description('list live users: id, role, email, name')
    .option('--email <email>', 'only the user with this email')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel users ls', 'easel users ls --email ada@example.com --json'))
    .action((options) => listUsers(clientFromEnv(), options));
  users
    .command('rm')
    .description('delete a user: their tasks stay, their keys stop working at once')
    .argument('<user>', 'user id or email')
    .addHelpText('after', examples('easel users rm ada@example.com', 'easel users rm 0193a0c4-…'))
    .action((user: string) => removeUser(clientFromEnv(), user));

  const workerTokens = program
    .command('worker-tokens')
    .description('worker tokens for remote workers (admin): create, list and revoke them')
    .addHelpText(
      'after',
      examples(
        'TOKEN=$(easel worker-tokens create gpu-box-1)',
        'easel worker-tokens ls',
        'easel worker-tokens revoke <token-id>',
      ) + '\nOn the GPU machine: easel worker --remote https://easel.example --token $TOKEN\n',
    );
  workerTokens
    .command('create')
    .description('make a worker token; printed once (alone on stdout), stored only as a hash')
    .argument('<label>', 'which machine it is for')
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples('TOKEN=$(easel worker-tokens create gpu-box-1)', 'easel worker-tokens create gpu2 --json'),
    )
    .action((label: string, options) => createWorkerToken(clientFromEnv(), label, options));
  workerTokens
    .command('ls')
    .description('list worker tokens (never the tokens themselves)')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel worker-tokens ls', 'easel worker-tokens ls --json'))
    .action((options) => listWorkerTokens(clientFromEnv(), options));
  workerTokens
    .command('revoke')
    .description('revoke a worker token; every API process refuses it from the next call on')
    .argument('<token-id>', 'the token id (from easel worker-tokens ls)')
    .addHelpText('after', examples('easel worker-tokens revoke 0193a0c4-…'))
    .action((id: string) => revokeWorkerToken(clientFromEnv(), id));

  const keys = program
    .command('keys')
    .description('API keys: create, list and revoke them; generate one for EASEL_ADMIN_KEY')
    .addHelpText(
      'after',
      examples(
        'EASEL_ADMIN_KEY=$(easel keys generate)',
        'easel keys create ada@example.com --name laptop',
        'easel keys ls',
        'easel keys revoke <key-id>',
      ) + '\nClient commands send EASEL_API_KEY as `Authorization: Bearer`.\n',
    );
  keys
    .command('create')
    .description('make an API key; it is printed once (alone on stdout) and stored only as a hash')
    .argument('[user]', 'user id or email (default: yourself, the owner of EASEL_API_KEY)')
    .option('--name <text>', 'what the key is for')
    .option('--json', "print the API's answer as JSON")
    .addHelpText(
      'after',
      examples(
        'easel keys create ada@example.com --name laptop',
        'KEY=$(easel keys create)',
        'easel keys create --json',
      ),
    )
    .action((user: string | undefined, options) => createKey(clientFromEnv(), user, options));
  keys
    .command('ls')
    .description('list API keys (never the keys themselves)')
    .argument('[user]', 'user id or email (default: yourself)')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel keys ls', 'easel keys ls ada@example.com --json'))
    .action((user: string | undefined, options) => listKeys(clientFromEnv(), user, options));
  keys
    .command('revoke')
    .description('revoke an API key; every API process refuses it from the next request on')
    .argument('<key-id>', 'the key id (from easel keys ls)')
    .addHelpText('after', examples('easel keys revoke 0193a0c4-…'))
    .action((id: string) => revokeKey(clientFromEnv(), id));
  keys
    .command('generate')
    .description('print a fresh random API key, offline: set it as EASEL_ADMIN_KEY to bootstrap the first admin')
    .addHelpText('after', examples('easel keys generate', 'echo "EASEL_ADMIN_KEY=$(easel keys generate)" >> .env'))
    .action(printGeneratedKey);
}
