import { inTransaction } from '../db/transaction.js';
import type { ApiKeyRow, Principal } from '../auth/api-keys.js';
import { createApiKey } from '../auth/api-keys.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { ApiError } from '../domain/errors.js';
import { LOCAL_USER_ID } from '../domain/task.js';
import { findKey, listKeys, revokeKey } from './keys.js';
import {
  countOtherLiveAdmins,
  findLiveUser,
  findLiveUserByEmail,
  insertUser,
  isUniqueViolation,
  listLiveUsers,
  softDeleteUser,
  updateUser,
  type Role,
  type UserRow,
} from './store.js';

export interface NewUser {
  email?: string | undefined;
  name: string;
  role?: Role | undefined;
}

export interface UserChanges {
  email?: string | null | undefined;
  name?: string | undefined;
  role?: Role | undefined;
}

/**
 * Users and their keys, with who may do what. Admins manage everyone; a user may read
 * themself and manage their own keys. Anything a caller may not see is "not found", never
 * "forbidden", so ids cannot be probed.
 */
export class UserService {
  constructor(private readonly pool: Pool) {}

  async create(input: NewUser): Promise<UserRow> {
    const email = input.email ?? null;
    if (email !== null) await this.refuseTakenEmail(email);
    try {
      return await insertUser(this.pool, { email, name: input.name, role: input.role ?? 'user' });
    } catch (error) {
      // Two creates with one email at once: the unique index decides, and the loser hears why.
      if (isUniqueViolation(error)) throw emailTaken(email!);
      throw error;
    }
  }

  /** The user, if the caller is an admin or that user; otherwise USER_NOT_FOUND. */
  async get(caller: Principal, id: string): Promise<UserRow> {
    const user = caller.role === 'admin' || caller.userId === id ? await findLiveUser(this.pool, id) : undefined;
    if (!user) throw new ApiError('USER_NOT_FOUND', `no user ${id}`);
    return user;
  }

  findByEmail(email: string): Promise<UserRow | undefined> {
    return findLiveUserByEmail(this.pool, email);
  }

  async list(after: string | undefined, limit: number): Promise<{ users: UserRow[]; nextCursor: string | null }> {
    const rows = await listLiveUsers(this.pool, after, limit + 1);
    const users = rows.slice(0, limit);
    return { users, nextCursor: rows.length > limit ? users.at(-1)!.id : null };
  }

  async update(id: string, changes: UserChanges): Promise<UserRow> {
    if (changes.email) await this.refuseTakenEmail(changes.email, id);
    return this.withAdminLock(async (client) => {
      const user = await findLiveUser(client, id);
      if (!user) throw new ApiError('USER_NOT_FOUND', `no user ${id}`);
      if (changes.role === 'user' && user.role === 'admin') await refuseLosingAdmin(client, user, 'demote');
      try {
        return (await updateUser(client, id, changes))!;
      } catch (error) {
        if (isUniqueViolation(error)) throw emailTaken(changes.email!);
        throw error;
      }
    });
  }

  /** Soft delete: tasks and history stay; authenticateKey ignores a deleted user's keys at once. */
  async delete(id: string): Promise<UserRow> {
    return this.withAdminLock(async (client) => {
      const user = await findLiveUser(client, id);
      if (!user) throw new ApiError('USER_NOT_FOUND', `no user ${id}`);
      if (user.role === 'admin') await refuseLosingAdmin(client, user, 'delete');
      return (await softDeleteUser(client, id))!;
    });
  }

  async createKey(caller: Principal, userId: string, name: string): Promise<{ row: ApiKeyRow; key: string }> {
    await this.get(caller, userId);
    return createApiKey(this.pool, userId, name);
  }

  async listKeys(caller: Principal, userId: string): Promise<ApiKeyRow[]> {
    await this.get(caller, userId);
    return listKeys(this.pool, userId);
  }

  /** Admins revoke any key, users their own; anyone else's key is KEY_NOT_FOUND. */
  async revokeKey(caller: Principal, keyId: string): Promise<ApiKeyRow> {
    const key = await findKey(this.pool, keyId);
    if (!key || (caller.role !== 'admin' && key.user_id !== caller.userId)) {
      throw new ApiError('KEY_NOT_FOUND', `no key ${keyId}`);
    }
    return (await revokeKey(this.pool, keyId))!;
  }

  private async refuseTakenEmail(email: string, exceptId?: string): Promise<void> {
    const existing = await findLiveUserByEmail(this.pool, email);
    if (existing && existing.id !== exceptId) throw emailTaken(email, existing.id);
  }

  /**
   * Deleting and demoting admins take one lock, so two at once cannot each see the other as
   * the admin that remains and leave none.
   */
  private withAdminLock<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('easel:admins', 0))`);
      return work(client);
    });
  }
}

function emailTaken(email: string, existingId?: string): ApiError {
  return new ApiError(
    'USER_EXISTS',
    `a user with email ${email} exists already`,
    existingId ? { existing_id: existingId } : {},
  );
}

/**
 * The built-in local user is the admin keyless requests act as in local mode: it is never
 * deleted or demoted. Nor is the last other admin, or nobody could manage a multi-user server.
 */
async function refuseLosingAdmin(client: PoolClient, user: UserRow, what: 'delete' | 'demote'): Promise<void> {
  if (user.id === LOCAL_USER_ID) {
    throw new ApiError('LOCAL_USER_PROTECTED', `the built-in local user cannot be ${what}d`);
  }
  if ((await countOtherLiveAdmins(client, LOCAL_USER_ID, user.id)) === 0) {
    throw new ApiError('LAST_ADMIN', `${user.name} is the last admin; make another admin first, then ${what} this one`);
  }
}
