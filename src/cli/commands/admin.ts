import { InvalidArgumentError } from 'commander';
import type { EaselClient } from '../client.js';
import { CliError } from '../client.js';

/** `easel admin …` and `easel queue clear`: the /v1/admin/ views, as tables or (--json) as the API answers. */

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

interface JsonOption {
  json?: boolean;
}

interface AdminTask {
  id: string;
  user_id: string;
  status: string;
  provider: string;
  created_at: string;
  error: { code: string; message: string } | null;
  params: { prompt: string };
}
interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an RFC 3339 time, or a span back from now such as 30m, 24h or 7d. */
export function sinceOption(value: string): string {
  const span = /^(\d{1,6})([mhd])$/.exec(value.trim());
  if (span) return new Date(Date.now() - Number(span[1]) * UNITS[span[2]!]!).toISOString();
  if (!Number.isNaN(Date.parse(value)) && /^\d{4}-\d{2}-\d{2}T/.test(value)) return value;
  throw new InvalidArgumentError('give an RFC 3339 time (2026-01-31T12:00:00Z) or a span such as 30m, 24h, 7d');
}

interface TaskFilters {
  user?: string;
  status?: string;
  provider?: string;
  code?: string;
  since?: string;
  limit?: number;
  cursor?: string;
}

function filterQuery(options: TaskFilters): URLSearchParams {
  const query = new URLSearchParams();
  if (options.user !== undefined) query.set('user_id', options.user);
  if (options.status !== undefined) query.set('status', options.status);
  if (options.provider !== undefined) query.set('provider', options.provider);
  if (options.code !== undefined) query.set('error_code', options.code);
  if (options.since !== undefined) query.set('created_after', options.since);
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor !== undefined) query.set('cursor', options.cursor);
  return query;
}

function taskRow(task: AdminTask): string {
  const prompt = task.params.prompt.length > 30 ? `${task.params.prompt.slice(0, 29)}…` : task.params.prompt;
  const what = task.error ? `${task.error.code}: ${task.error.message.slice(0, 40)}` : prompt;
  return [task.id, task.status.padEnd(9), task.provider.padEnd(12), task.user_id, task.created_at, what].join('  ');
}

async function printTaskPage(client: EaselClient, route: string, options: TaskFilters & JsonOption, again: string) {
  const { data } = await client.request<Page<AdminTask>>('GET', `${route}?${filterQuery(options)}`);
  if (options.json) return printJson(data);
  if (data.data.length === 0) print('no tasks');
  data.data.forEach((task) => print(taskRow(task)));
  if (data.next_cursor) print(`… more: ${again} --cursor ${data.next_cursor}`);
}

/** The options again, so the "more" hint continues the same listing when pasted. */
function repeatFilters(command: string, options: TaskFilters): string {
  const parts = [command];
  if (options.user !== undefined) parts.push(`--user ${options.user}`);
  if (options.status !== undefined) parts.push(`--status ${options.status}`);
  if (options.provider !== undefined) parts.push(`--provider ${options.provider}`);
  if (options.code !== undefined) parts.push(`--code ${options.code}`);
  if (options.since !== undefined) parts.push(`--since ${options.since}`);
  if (options.limit !== undefined) parts.push(`--limit ${options.limit}`);
  return parts.join(' ');
}

export function adminTasks(client: EaselClient, options: TaskFilters & JsonOption): Promise<void> {
  return printTaskPage(client, '/v1/admin/tasks', options, repeatFilters('easel admin tasks', options));
}

export function listDeadLetters(client: EaselClient, options: TaskFilters & JsonOption): Promise<void> {
  return printTaskPage(client, '/v1/admin/dead-letters', options, repeatFilters('easel admin dead ls', options));
}

/** A retry or purge body: the ids given, or the filters. */
function selection(ids: string[], options: TaskFilters & { max?: number }): Record<string, unknown> {
  if (ids.length > 0) return { ids };
  return {
    provider: options.provider,
    error_code: options.code,
    user_id: options.user,
    created_after: options.since,
    max: options.max,
  };
}

interface Outcome {
  ids: string[];
  skipped: string[];
  more: boolean;
  retried?: number;
  purged?: number;
  images_deleted?: number;
}

function summarise(verb: string, count: number, outcome: Outcome, extra = ''): void {
  print(`${count} dead letter(s) ${verb}${extra}`);
  if (outcome.skipped.length > 0) print(`not dead letters (skipped): ${outcome.skipped.join(' ')}`);
  if (outcome.more) print('more match: run the command again');
}

export async function retryDeadLetters(
  client: EaselClient,
  ids: string[],
  options: TaskFilters & JsonOption & { max?: number },
): Promise<void> {
  const { data } = await client.request<Outcome>('POST', '/v1/admin/dead-letters/retry', selection(ids, options));
  if (options.json) return printJson(data);
  summarise('queued again', data.retried ?? 0, data);
}

/** Dead letters matching the filters, counted a page at a time up to `cap`. */
async function countDeadLetters(client: EaselClient, options: TaskFilters, cap: number): Promise<number> {
  let count = 0;
  let cursor: string | undefined;
  do {
    const query = filterQuery({ ...options, limit: 100, cursor });
    const { data } = await client.request<Page<AdminTask>>('GET', `/v1/admin/dead-letters?${query}`);
    count += data.data.length;
    cursor = data.next_cursor ?? undefined;
  } while (cursor && count < cap);
  return count;
}

export async function purgeDeadLetters(
  client: EaselClient,
  ids: string[],
  options: TaskFilters & JsonOption & { max?: number; yes?: boolean },
): Promise<void> {
  if (!options.yes) {
    const cap = options.max ?? 1000;
    const count = ids.length > 0 ? ids.length : await countDeadLetters(client, options, cap);
    const many = ids.length === 0 && count >= cap ? `at least ${cap}` : String(count);
    throw new CliError(
      `not purging without --yes: ${many} dead letter(s) would be deleted with their images, for good; run again with --yes`,
    );
  }
  const body = { confirm: 'purge', ...selection(ids, options) };
  const { data } = await client.request<Outcome>('POST', '/v1/admin/dead-letters/purge', body);
  if (options.json) return printJson(data);
  summarise('purged', data.purged ?? 0, data, `, ${data.images_deleted ?? 0} image file(s) deleted`);
}

interface Counts {
  queued: number;
  running: number;
  retrying: number;
  dead: number;
}
interface Stats {
  queues: Array<Counts & { provider: string; priority: number }>;
  totals: Counts;
  days: Array<{ date: string; processed: number; failed: number }>;
}

const countCells = (counts: Counts) =>
  [counts.queued, counts.running, counts.retrying, counts.dead].map((n) => String(n).padStart(9)).join('');

export async function adminStats(client: EaselClient, options: JsonOption & { days?: number }): Promise<void> {
  const query = options.days !== undefined ? `?days=${options.days}` : '';
  const { data } = await client.request<Stats>('GET', `/v1/admin/stats${query}`);
  if (options.json) return printJson(data);
  print(
    `${'provider'.padEnd(14)}${'priority'.padStart(9)}${['queued', 'running', 'retrying', 'dead'].map((h) => h.padStart(9)).join('')}`,
  );
  for (const row of data.queues)
    print(`${row.provider.padEnd(14)}${String(row.priority).padStart(9)}${countCells(row)}`);
  print(`${'total'.padEnd(14)}${''.padStart(9)}${countCells(data.totals)}`);
  print('');
  print(`${'day (UTC)'.padEnd(12)}${'processed'.padStart(10)}${'failed'.padStart(8)}`);
  for (const day of data.days) {
    print(`${day.date.padEnd(12)}${String(day.processed).padStart(10)}${String(day.failed).padStart(8)}`);
  }
}

interface AdminUser {
  id: string;
  name: string;
  email: string | null;
  role: string;
  deleted_at: string | null;
  tasks: Record<'queued' | 'running' | 'succeeded' | 'failed' | 'canceled', number>;
  balance: number | null;
}

export async function adminUsers(
  client: EaselClient,
  options: JsonOption & { limit?: number; cursor?: string },
): Promise<void> {
  const query = new URLSearchParams();
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor !== undefined) query.set('cursor', options.cursor);
  const { data } = await client.request<Page<AdminUser>>('GET', `/v1/admin/users?${query}`);
  if (options.json) return printJson(data);
  if (data.data.length === 0) print('no users');
  for (const user of data.data) {
    const t = user.tasks;
    print(
      [
        user.id,
        user.role.padEnd(5),
        (user.email ?? user.name).padEnd(24),
        `${t.queued} queued, ${t.running} running, ${t.succeeded} succeeded, ${t.failed} failed, ${t.canceled} canceled`,
        user.balance === null ? '' : `balance ${user.balance}`,
        user.deleted_at ? `deleted ${user.deleted_at}` : '',
      ]
        .join('  ')
        .trimEnd(),
    );
  }
  if (data.next_cursor) print(`… more: easel admin users --cursor ${data.next_cursor}`);
}

/**
 * `easel queue clear`: without --yes it changes nothing and says how many tasks would be
 * canceled (queued and retrying, from the stats), so the count is seen before it is done.
 */
export async function clearQueue(client: EaselClient, options: JsonOption & { provider?: string; yes?: boolean }) {
  if (!options.yes) {
    const { data } = await client.request<Stats>('GET', '/v1/admin/stats?days=1');
    const waiting = data.queues
      .filter((row) => options.provider === undefined || row.provider === options.provider)
      .reduce((sum, row) => sum + row.queued + row.retrying, 0);
    const of = options.provider === undefined ? '' : ` of ${options.provider}`;
    throw new CliError(
      `not clearing without --yes: ${waiting} queued task(s)${of} would be canceled (running ones are left alone); run again with --yes`,
    );
  }
  const body = { confirm: 'clear', ...(options.provider !== undefined ? { provider: options.provider } : {}) };
  const { data } = await client.request<{ canceled: number }>('POST', '/v1/admin/queue/clear', body);
  if (options.json) return printJson(data);
  print(`${data.canceled} queued task(s) canceled`);
}
