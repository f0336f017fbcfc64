import { ApiError } from '../domain/errors.js';
import type { Pool } from '../db/pool.js';
import type { SecretBox } from './secret-box.js';
import {
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

/** What the admin routes (and so the CLI) may do with credentials, as API errors. */
export class CredentialService {
  constructor(
    private readonly pool: Pool,
    /** Undefined when no key is configured (external database, no EASEL_SECRET_KEY). */
    private readonly box: SecretBox | undefined,
  ) {}

  async add(input: NewCredential): Promise<CredentialRow> {
    if (!this.box) {
      throw new ApiError(
        'SECRET_KEY_MISSING',
        'set EASEL_SECRET_KEY (32 bytes as 64 hex digits or base64, e.g. `openssl rand -hex 32`) on every Easel process to store provider secrets with an external DATABASE_URL',
      );
    }
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
    return result.row;
  }

  list(provider?: string): Promise<CredentialRow[]> {
    return listCredentials(this.pool, provider);
  }

  async get(id: string): Promise<CredentialRow> {
    return found(id, await getCredential(this.pool, id));
  }

  async update(id: string, changes: CredentialChanges): Promise<CredentialRow> {
    return found(id, await updateCredential(this.pool, id, changes));
  }

  async disable(id: string, reason: string): Promise<CredentialRow> {
    return found(id, await disableCredential(this.pool, id, reason));
  }

  async enable(id: string): Promise<CredentialRow> {
    return found(id, await enableCredential(this.pool, id));
  }

  async remove(id: string): Promise<void> {
    if (!(await deleteCredential(this.pool, id))) throw notFound(id);
  }
}

const notFound = (id: string) => new ApiError('CREDENTIAL_NOT_FOUND', `no credential ${id}`);

function found(id: string, row: CredentialRow | undefined): CredentialRow {
  if (!row) throw notFound(id);
  return row;
}
