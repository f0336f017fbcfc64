import type { TaskResource } from '../../api/schemas/task.js';
import type { EaselClient } from '../client.js';

const print = (text: string) => process.stdout.write(`${text}\n`);

function row(task: TaskResource): string {
  const prompt = task.params.prompt.length > 40 ? `${task.params.prompt.slice(0, 39)}…` : task.params.prompt;
  return [task.id, task.status.padEnd(9), task.provider.padEnd(10), task.created_at, prompt].join('  ');
}

export async function listTasks(
  client: EaselClient,
  options: { status?: string; provider?: string; limit?: number },
): Promise<void> {
  const query = new URLSearchParams();
  if (options.status) query.set('status', options.status);
  if (options.provider) query.set('provider', options.provider);
  if (options.limit) query.set('limit', String(options.limit));
  const { data } = await client.request<{ data: TaskResource[]; next_cursor: string | null }>(
    'GET',
    `/v1/tasks?${query}`,
  );
  if (data.data.length === 0) print('no tasks');
  data.data.forEach((task) => print(row(task)));
  if (data.next_cursor) print(`… more: --cursor ${data.next_cursor}`);
}

export async function showTask(client: EaselClient, id: string) {
  const { data } = await client.request<TaskResource>('GET', `/v1/tasks/${id}`);
  print(JSON.stringify(data, null, 2));
}

export async function cancelTask(client: EaselClient, id: string) {
  const { status } = await client.request<TaskResource>('POST', `/v1/tasks/${id}/cancel`);
  print(status === 202 ? `${id} cancel requested (running)` : `${id} canceled`);
}

export async function retryTask(client: EaselClient, id: string) {
  await client.request<TaskResource>('POST', `/v1/tasks/${id}/retry`);
  print(`${id} queued again`);
}

export async function queueStatus(client: EaselClient) {
  const { data } = await client.request<{
    providers: Array<{
      provider: string;
      queued: number;
      running: number;
      concurrency_limit: number;
      median_run_seconds: number | null;
    }>;
    workers: { live: number; slots: number };
  }>('GET', '/v1/queue');
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
