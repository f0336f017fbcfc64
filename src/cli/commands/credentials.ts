import type { Static } from '@sinclair/typebox';
import type { CredentialSchema } from '../../api/routes/admin-credentials.js';
import type { EaselClient } from '../client.js';
import { CliError } from '../client.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

/** The admin view of a credential (GET /v1/admin/credentials): never the secret. */
type CredentialView = Static<typeof CredentialSchema>;

interface JsonOption {
  json?: boolean;
}

export interface AddOptions extends JsonOption {
  label?: string;
  concurrency?: number;
  dailyLimit?: number;
  resetHour?: number;
  fromEnv?: string;
}

/**
 * The secret comes from stdin or a named environment variable, never from argv: the command
 * line of a process is visible to every user of the machine (`ps`). A terminal on stdin is
 * refused rather than echoing the secret as it is typed.
 */
async function readSecret(options: AddOptions, stdin: NodeJS.ReadStream): Promise<string> {
  if (options.fromEnv !== undefined) {
    const value = process.env[options.fromEnv]?.trim();
    if (!value) throw new CliError(`${options.fromEnv} is not set or empty`);
    return value;
  }
  if (stdin.isTTY) {
    throw new CliError(
      'give the secret on stdin (easel credentials add replicate < token.txt) or name a variable with --from-env VAR; it is never read from the command line',
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(chunk as Buffer);
  const secret = Buffer.concat(chunks).toString('utf8').trim();
  if (!secret)
    throw new CliError('stdin was empty: pipe the secret in, e.g. easel credentials add replicate < token.txt');
  return secret;
}

export async function addCredential(
  client: EaselClient,
  provider: string,
  options: AddOptions,
  stdin: NodeJS.ReadStream = process.stdin,
): Promise<void> {
  const secret = await readSecret(options, stdin);
  const { data } = await client.request<CredentialView>('POST', '/v1/admin/credentials', {
    provider,
    secret,
    label: options.label ?? (options.fromEnv !== undefined ? `env ${options.fromEnv}` : undefined),
    concurrency: options.concurrency,
    daily_limit: options.dailyLimit,
    daily_reset_utc_hour: options.resetHour,
  });
  if (options.json) return printJson(data);
  print(`${data.id} added (${data.provider}, ${data.label}, ${data.secret_hint})`);
}

function usage(credential: CredentialView): string {
  return credential.daily_limit === null
    ? `${credential.used_today} today`
    : `${credential.used_today}/${credential.daily_limit} today`;
}

/** A signing-in account's token, e.g. `token valid 23d`; empty for other credentials. */
function tokenNote(credential: CredentialView): string {
  const token = credential.token;
  if (!token) return '';
  return token.days_left === null || token.state === 'none' || token.state === 'damaged'
    ? `token ${token.state}`
    : `token ${token.state} ${token.days_left}d`;
}

function note(credential: CredentialView): string {
  if (credential.state === 'disabled') return `disabled: ${credential.disabled_reason ?? ''}`;
  if (credential.state === 'cooling_down') return `until ${credential.cooldown_until}`;
  if (credential.state === 'exhausted') return `until ${credential.next_reset_at}`;
  return credential.last_error ? `last error ${credential.last_error.code} at ${credential.last_error.at}` : '';
}

export async function listCredentials(client: EaselClient, options: JsonOption & { provider?: string }): Promise<void> {
  const query = options.provider !== undefined ? `?provider=${encodeURIComponent(options.provider)}` : '';
  const { data } = await client.request<{ data: CredentialView[] }>('GET', `/v1/admin/credentials${query}`);
  if (options.json) return printJson(data);
  if (data.data.length === 0) return print('no credentials');
  for (const credential of data.data) {
    print(
      [
        credential.id,
        credential.provider.padEnd(12),
        credential.secret_hint,
        credential.state.padEnd(12),
        `${credential.in_use}/${credential.concurrency} busy`.padEnd(10),
        usage(credential).padEnd(14),
        credential.label,
        tokenNote(credential),
        note(credential),
      ]
        .filter((field) => field !== '')
        .join('  ')
        .trimEnd(),
    );
  }
}

export async function disableCredential(
  client: EaselClient,
  id: string,
  options: JsonOption & { reason?: string },
): Promise<void> {
  const body = options.reason !== undefined ? { reason: options.reason } : {};
  const { data } = await client.request<CredentialView>('POST', `/v1/admin/credentials/${id}/disable`, body);
  if (options.json) return printJson(data);
  print(`${id} disabled`);
}

export async function enableCredential(client: EaselClient, id: string, options: JsonOption): Promise<void> {
  const { data } = await client.request<CredentialView>('POST', `/v1/admin/credentials/${id}/enable`);
  if (options.json) return printJson(data);
  print(`${id} enabled (${data.state})`);
}

export async function removeCredential(client: EaselClient, id: string): Promise<void> {
  await client.request('DELETE', `/v1/admin/credentials/${id}`);
  print(`${id} deleted`);
}
