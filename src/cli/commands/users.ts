import type { UserResource } from '../../api/schemas/users.js';
import type { EaselClient } from '../client.js';
import { CliError } from '../client.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface JsonOption {
  json?: boolean;
}

/** A user named on the command line by id or by email → their id. */
export async function resolveUserId(client: EaselClient, user: string): Promise<string> {
  if (UUID.test(user)) return user;
  if (!user.includes('@')) throw new CliError(`${user} is neither a user id nor an email`);
  const { data } = await client.request<{ data: UserResource[] }>('GET', `/v1/users?email=${encodeURIComponent(user)}`);
  const found = data.data[0];
  if (!found) throw new CliError(`no user with email ${user} (easel users ls lists them)`);
  return found.id;
}

const describeUser = (user: UserResource) =>
  [user.id, user.role.padEnd(5), (user.email ?? '-').padEnd(28), user.name].join('  ').trimEnd();

export async function addUser(
  client: EaselClient,
  name: string,
  options: JsonOption & { email?: string; admin?: boolean },
): Promise<void> {
  const { data } = await client.request<UserResource>('POST', '/v1/users', {
    name,
    email: options.email,
    role: options.admin ? 'admin' : 'user',
  });
  if (options.json) return printJson(data);
  print(`${data.id} added (${data.name}, ${data.email ?? 'no email'}, ${data.role})`);
}

/** Every live user, following the pages to the end. */
export async function listUsers(client: EaselClient, options: JsonOption & { email?: string }): Promise<void> {
  const users: UserResource[] = [];
  if (options.email !== undefined) {
    const { data } = await client.request<{ data: UserResource[] }>(
      'GET',
      `/v1/users?email=${encodeURIComponent(options.email)}`,
    );
    users.push(...data.data);
  } else {
    let cursor: string | null = null;
    do {
      const query: string = `?limit=100${cursor ? `&cursor=${cursor}` : ''}`;
      const { data } = await client.request<{ data: UserResource[]; next_cursor: string | null }>(
        'GET',
        `/v1/users${query}`,
      );
      users.push(...data.data);
      cursor = data.next_cursor;
    } while (cursor);
  }
  if (options.json) return printJson(users);
  if (users.length === 0) return print('no users');
  for (const user of users) print(describeUser(user));
}

export async function removeUser(client: EaselClient, user: string): Promise<void> {
  const id = await resolveUserId(client, user);
  await client.request('DELETE', `/v1/users/${id}`);
  print(`${id} deleted (their tasks stay; their keys no longer work)`);
}
