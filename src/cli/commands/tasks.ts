import type { TaskResource } from '../../api/schemas/task.js';
import type { EaselClient } from '../client.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

/** `--json`: print the API's answer as it is, for scripts. */
interface JsonOption {
  json?: boolean;
}

function row(task: TaskResource): string {
  const prompt = task.params.prompt.length > 40 ? `${task.params.prompt.slice(0, 39)}…` : task.params.prompt;
  return [task.id, task.status.padEnd(9), task.provider.padEnd(10), task.created_at, prompt].join('  ');
}

export async function listTasks(
  client: EaselClient,
  options: JsonOption & { status?: string; provider?: string; limit?: number; cursor?: string },
): Promise<void> {
  const query = new URLSearchParams();
  if (options.status !== undefined) query.set('status', options.status);
  if (options.provider !== undefined) query.set('provider', options.provider);
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor !== undefined) query.set('cursor', options.cursor);
  const { data } = await client.request<{ data: TaskResource[]; next_cursor: string | null }>(
    'GET',
    `/v1/tasks?${query}`,
  );
  if (options.json) return printJson(data);
  if (data.data.length === 0) print('no tasks');
  data.data.forEach((task) => print(row(task)));
  if (data.next_cursor) {
    // The hint repeats the filters, so pasting it continues the same listing.
    const again = ['easel tasks ls'];
    if (options.status !== undefined) again.push(`--status ${options.status}`);
    if (options.provider !== undefined) again.push(`--provider ${options.provider}`);
    if (options.limit !== undefined) again.push(`--limit ${options.limit}`);
    print(`… more: ${[...again, `--cursor ${data.next_cursor}`].join(' ')}`);
  }
}

export async function showTask(client: EaselClient, id: string): Promise<void> {
  const { data } = await client.request<TaskResource>('GET', `/v1/tasks/${id}`);
  printJson(data);
}

export async function cancelTask(client: EaselClient, id: string, options: JsonOption = {}): Promise<void> {
  const { status, data } = await client.request<TaskResource>('POST', `/v1/tasks/${id}/cancel`);
  if (options.json) return printJson(data);
  print(status === 202 ? `${id} cancel requested (running)` : `${id} canceled`);
}

export async function retryTask(client: EaselClient, id: string, options: JsonOption = {}): Promise<void> {
  const { data } = await client.request<TaskResource>('POST', `/v1/tasks/${id}/retry`);
  if (options.json) return printJson(data);
  print(`${id} queued again`);
}

interface QueueOverview {
  providers: Array<{
    provider: string;
    queued: number;
    running: number;
    concurrency_limit: number;
    median_run_seconds: number | null;
  }>;
  workers: { live: number; slots: number };
}

export async function queueStatus(client: EaselClient, options: JsonOption = {}): Promise<void> {
  const { data } = await client.request<QueueOverview>('GET', '/v1/queue');
  if (options.json) return printJson(data);
  print(`workers: ${data.workers.live} live, ${data.workers.slots} slots`);
  print(
    [
      'provider'.padEnd(12),
      'queued'.padStart(8),
      'running'.padStart(8),
      'limit'.padStart(6),
      'median s'.padStart(9),
    ].join(' '),
  );
  for (const p of data.providers) {
    const median = p.median_run_seconds === null ? '-' : p.median_run_seconds.toFixed(2);
    print(
      [
        p.provider.padEnd(12),
        String(p.queued).padStart(8),
        String(p.running).padStart(8),
        String(p.concurrency_limit).padStart(6),
        median.padStart(9),
      ].join(' '),
    );
  }
}
