import type { Command } from 'commander';
import { clientFromEnv, type EaselClient } from '../client.js';
import { examples } from '../options.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

interface ReconcileOutcome {
  settled: number;
  failed: number;
  retrying: number;
  pending: number;
  failed_total: number;
}

interface Charge {
  task_id: string;
  email: string;
  amount: number;
  status: string;
  attempts: number;
  last_error: string | null;
}

/** `easel billing reconcile`: send the licence API's pending charges now (admin). */
export async function reconcileCharges(
  client: EaselClient,
  options: { retryFailed?: boolean; json?: boolean },
): Promise<void> {
  const query = options.retryFailed ? '?retry_failed=true' : '';
  const { data } = await client.request<ReconcileOutcome>('POST', `/v1/admin/billing/reconcile${query}`);
  if (options.json) return printJson(data);
  print(
    `settled ${data.settled}, refused ${data.failed}, still unanswered ${data.retrying}; ` +
      `left: ${data.pending} pending, ${data.failed_total} failed`,
  );
  // Anything left needs a look: a non-zero exit lets scripts notice.
  if (data.pending + data.failed_total > 0) process.exitCode = 1;
}

/** `easel billing unreconciled`: charges the licence API has not confirmed (first page, admin). */
export async function listUnreconciled(client: EaselClient, options: { json?: boolean }): Promise<void> {
  const { data } = await client.request<{ data: Charge[]; pending: number; failed: number }>(
    'GET',
    '/v1/admin/billing/unreconciled?limit=100',
  );
  if (options.json) return printJson(data);
  for (const charge of data.data) {
    print(
      `${charge.task_id}  ${charge.status.padEnd(7)}  ${String(charge.amount).padStart(10)}  ${charge.email}  ` +
        `attempts ${charge.attempts}${charge.last_error ? `  ${charge.last_error}` : ''}`,
    );
  }
  print(`${data.pending} pending, ${data.failed} failed`);
}

/** `easel billing …`: the external licence API's charges (LICENSE_API_ENDPOINT). */
export function addBillingCommands(program: Command): void {
  const billing = program
    .command('billing')
    .description("the external licence API's charges (needs an admin's EASEL_API_KEY, or local mode)")
    .addHelpText('after', examples('easel billing unreconciled', 'easel billing reconcile'));
  billing
    .command('reconcile')
    .description('send pending charges to the licence API now; exits 1 while some are left')
    .option('--retry-failed', 'send the charges it refused again too')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel billing reconcile', 'easel billing reconcile --retry-failed --json'))
    .action((options) => reconcileCharges(clientFromEnv(), options));
  billing
    .command('unreconciled')
    .alias('ls')
    .description('charges the licence API has not confirmed, oldest first (first 100)')
    .option('--json', "print the API's answer as JSON")
    .addHelpText('after', examples('easel billing unreconciled', 'easel billing ls --json'))
    .action((options) => listUnreconciled(clientFromEnv(), options));
}
