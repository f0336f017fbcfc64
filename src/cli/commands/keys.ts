import { generateKey } from '../../auth/api-keys.js';
import type { EaselClient } from '../client.js';
import { resolveUserId } from './users.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));

interface JsonOption {
  json?: boolean;
}
interface KeyView {
  id: string;
  user_id: string;
  display: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** The user a key command is about: the one named, or the caller (the owner of EASEL_API_KEY). */
async function targetUserId(client: EaselClient, user: string | undefined): Promise<string> {
  if (user !== undefined) return resolveUserId(client, user);
  const { data } = await client.request<{ user: { id: string } }>('GET', '/v1/me');
  return data.user.id;
}

/**
 * The key alone on stdout, so `KEY=$(easel keys create …)` captures it; the reminder that it is
 * shown once goes to stderr.
 */
export async function createKey(
  client: EaselClient,
  user: string | undefined,
  options: JsonOption & { name?: string },
): Promise<void> {
  const id = await targetUserId(client, user);
  const { data } = await client.request<KeyView & { key: string }>('POST', `/v1/users/${id}/keys`, {
    name: options.name,
  });
  if (options.json) return printJson(data);
  print(data.key);
  process.stderr.write(`key ${data.id} (${data.display}…) for user ${id}: shown this once, store it now\n`);
}

export async function listKeys(client: EaselClient, user: string | undefined, options: JsonOption): Promise<void> {
  const id = await targetUserId(client, user);
  const { data } = await client.request<{ data: KeyView[] }>('GET', `/v1/users/${id}/keys`);
  if (options.json) return printJson(data.data);
  if (data.data.length === 0) return print('no keys');
  for (const key of data.data) {
    const state = key.revoked_at ? `revoked ${key.revoked_at}` : `last used ${key.last_used_at ?? 'never'}`;
    print([key.id, `${key.display}…`, state.padEnd(36), key.name].join('  ').trimEnd());
  }
}

export async function revokeKey(client: EaselClient, keyId: string): Promise<void> {
  const { data } = await client.request<KeyView>('DELETE', `/v1/keys/${keyId}`);
  print(`${keyId} revoked at ${data.revoked_at}`);
}

/** A fresh key, made here without a server: for EASEL_ADMIN_KEY, which the server adopts at start. */
export function printGeneratedKey(): void {
  print(generateKey().key);
}
