import type { EaselClient } from '../client.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

interface TokenView {
  id: string;
  label: string;
  display: string;
  created_at: string;
  revoked_at: string | null;
  last_seen_at: string | null;
}

/** The token alone on stdout (so `TOKEN=$(easel worker-tokens create gpu1)` captures it). */
export async function createWorkerToken(
  client: EaselClient,
  label: string,
  options: { json?: boolean },
): Promise<void> {
  const { data } = await client.request<TokenView & { token: string }>('POST', '/v1/admin/worker-tokens', { label });
  if (options.json) return printJson(data);
  print(data.token);
  process.stderr.write(
    `worker token ${data.id} (${data.display}…) for ${label}: shown this once; run \`easel worker --remote <url> --token <token>\` on the GPU machine\n`,
  );
}

export async function listWorkerTokens(client: EaselClient, options: { json?: boolean }): Promise<void> {
  const { data } = await client.request<{ data: TokenView[] }>('GET', '/v1/admin/worker-tokens');
  if (options.json) return printJson(data.data);
  if (data.data.length === 0) return print('no worker tokens');
  for (const token of data.data) {
    const state = token.revoked_at ? `revoked ${token.revoked_at}` : `last seen ${token.last_seen_at ?? 'never'}`;
    print([token.id, `${token.display}…`, state.padEnd(36), token.label].join('  ').trimEnd());
  }
}

export async function revokeWorkerToken(client: EaselClient, id: string): Promise<void> {
  const { data } = await client.request<TokenView>('DELETE', `/v1/admin/worker-tokens/${id}`);
  print(`${id} revoked at ${data.revoked_at}; its workers stop at their next call`);
}
