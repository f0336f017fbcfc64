import { ApiError } from '../domain/errors.js';
import type { Pool } from '../db/pool.js';
import type { SecretBox } from './secret-box.js';
import type { Hints } from '../db/notifier.js';
import type { ProviderRegistry } from '../providers/registry.js';
import {
  countCredentialsInUse,
  deleteCredential,
  disableCredential,
  enableCredential,
  getCredential,
  insertCredential,
  listCredentials,
  updateCredential,
  type CredentialChanges,
  type CredentialRow,
  type NewCredential,
} from './store.js';
import { readTokenStatuses, type TokenStatus } from './token-store.js';

/** What the admin routes (and so the CLI) may do with credentials, as API errors. */
export interface CredentialServiceDeps {
  /** Wakes workers when a pool gains capacity, so waiting tasks start now rather than at the next poll. */
  hints: Hints;
  /** Which providers draw on which pool. */
  registry: ProviderRegistry;
  /** Running tasks of workers silent this long hold no slot (`in_use` counts as claims do). */
  deadAfterMs: number;
}

/**
 * A credential with the tasks running on it now and, for pools of providers that sign in
 * (NovelAI), the state of its cached sign-in token.
 */
export type CredentialStatus = CredentialRow & { in_use: number; token?: TokenStatus };

export class CredentialService {
  constructor(
    private readonly pool: Pool,
    /** Undefined when no key is configured (external database, no EASEL_SECRET_KEY). */
    private readonly box: SecretBox | undefined,
    private readonly deps: CredentialServiceDeps,
  ) {}

  async add(input: NewCredential): Promise<CredentialStatus> {
    if (!this.box) {
      throw new ApiError(
        'SECRET_KEY_MISSING',
        'set EASEL_SECRET_KEY (32 bytes as 64 hex digits or base64, e.g. `openssl rand -hex 32`) on every Easel process to store provider secrets with an external DATABASE_URL',
      );
    }
    this.checkSecret(input);
    const result = await insertCredential(this.pool, this.box, input);
    if (!result.inserted) {
      throw new ApiError(
        'CREDENTIAL_EXISTS',
        `this secret is stored already for ${input.provider} as ${result.existingId}`,
        {
          existing_id: result.existingId,
        },
      );
    }
    this.wakeProvidersOf(result.row.provider);
    return this.withUse(result.row);
  }

  async list(provider?: string): Promise<CredentialStatus[]> {
    const [rows, inUse] = await Promise.all([
      listCredentials(this.pool, provider),
      countCredentialsInUse(this.pool, this.deps.deadAfterMs),
    ]);
    return this.withTokens(rows.map((row) => ({ ...row, in_use: inUse.get(row.id) ?? 0 })));
  }

  async get(id: string): Promise<CredentialStatus> {
    return this.withUse(found(id, await getCredential(this.pool, id)));
  }

  /** Any change may add capacity (a higher concurrency or daily limit, an earlier reset hour). */
  async update(id: string, changes: CredentialChanges): Promise<CredentialStatus> {
    const row = found(id, await updateCredential(this.pool, id, changes));
    this.wakeProvidersOf(row.provider);
    return this.withUse(row);
  }

  async disable(id: string, reason: string): Promise<CredentialStatus> {
    return this.withUse(found(id, await disableCredential(this.pool, id, reason)));
  }

  async enable(id: string): Promise<CredentialStatus> {
    const row = found(id, await enableCredential(this.pool, id));
    this.wakeProvidersOf(row.provider);
    return this.withUse(row);
  }

  async remove(id: string): Promise<void> {
    if (!(await deleteCredential(this.pool, id))) throw notFound(id);
  }

  /** A secret the pool's providers say cannot work is a 400 now, not a disabled credential later. */
  private checkSecret(input: NewCredential): void {
    for (const provider of this.deps.registry.list()) {
      if (provider.credentialPool !== input.provider || !provider.checkSecret) continue;
      const reason = provider.checkSecret(input.secret);
      if (reason === undefined) continue;
      const message = `secret: ${reason}`;
      throw new ApiError('VALIDATION_FAILED', message, {
        errors: [{ field: 'secret', pointer: '/secret', in: 'body', code: 'BAD_FORMAT', message }],
      });
    }
  }

  private async withUse(row: CredentialRow): Promise<CredentialStatus> {
    const inUse = await countCredentialsInUse(this.pool, this.deps.deadAfterMs, row.id);
    const [status] = await this.withTokens([{ ...row, in_use: inUse.get(row.id) ?? 0 }]);
    return status!;
  }

  /** Adds `token` to the credentials of pools whose provider signs in; others stay as they are. */
  private async withTokens(statuses: CredentialStatus[]): Promise<CredentialStatus[]> {
    const signingPools = new Set(
      this.deps.registry
        .list()
        .filter((provider) => provider.signsIn && provider.credentialPool)
        .map((provider) => provider.credentialPool),
    );
    const ids = statuses.filter((status) => signingPools.has(status.provider)).map((status) => status.id);
    if (ids.length === 0) return statuses;
    const tokens = await readTokenStatuses(this.pool, this.box, ids);
    return statuses.map((status) => {
      const token = tokens.get(status.id);
      return token ? { ...status, token } : status;
    });
  }

  /** Sent after the write committed (each statement here commits on its own). */
  private wakeProvidersOf(pool: string): void {
    for (const provider of this.deps.registry.list()) {
      if (provider.credentialPool === pool) this.deps.hints.taskReady(provider.id);
    }
  }
}

const notFound = (id: string) => new ApiError('CREDENTIAL_NOT_FOUND', `no credential ${id}`);

function found(id: string, row: CredentialRow | undefined): CredentialRow {
  if (!row) throw notFound(id);
  return row;
}
