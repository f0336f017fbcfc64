import type { Queryable } from '../db/pool.js';
import { countCredentialStates, type PoolStateCounts } from './store.js';

/** Why a provider with a credential pool cannot start a task now. */
export const UnavailableReasons = {
  /** The pool has no credential at all: add one. */
  NO_CREDENTIALS: 'no_credentials',
  /** Every credential is disabled (by an admin or after the provider refused it): enable or add one. */
  ALL_DISABLED: 'all_disabled',
  /** The next credential to come back is resting after a 429 or quota answer. */
  COOLING_DOWN: 'cooling_down',
  /** The next credential to come back has used its daily limit and waits for its reset. */
  DAILY_LIMIT_REACHED: 'daily_limit_reached',
  /** Credentials exist but this process has no key to open them (external database, no EASEL_SECRET_KEY). */
  SECRET_KEY_MISSING: 'secret_key_missing',
} as const;
export type UnavailableReason = (typeof UnavailableReasons)[keyof typeof UnavailableReasons];

export type Availability =
  | { available: true; reason: null; availableAgainAt: null }
  /** `availableAgainAt`: when a credential comes back by itself; null when only an admin can help. */
  | { available: false; reason: UnavailableReason; availableAgainAt: Date | null };

/** Counts by state of one pool; a pool without rows has none of anything. */
export type CredentialCounts = Pick<PoolStateCounts, 'total' | 'active' | 'cooling_down' | 'exhausted' | 'disabled'>;

const AVAILABLE: Availability = { available: true, reason: null, availableAgainAt: null };
const EMPTY: PoolStateCounts = {
  provider: '',
  total: 0,
  active: 0,
  cooling_down: 0,
  exhausted: 0,
  disabled: 0,
  next_cooldown_end: null,
  next_daily_reset: null,
};

/**
 * Whether a pool can serve now, and if not why and until when. Pure: the counts come from one
 * query. `active` means usable now (its concurrency may be busy: that is queueing, not absence).
 */
export function availabilityOf(counts: PoolStateCounts, hasSecretKey: boolean): Availability {
  if (counts.total === 0) return { available: false, reason: 'no_credentials', availableAgainAt: null };
  // Stored credentials this process cannot open serve no one, whatever their state.
  if (!hasSecretKey) return { available: false, reason: 'secret_key_missing', availableAgainAt: null };
  if (counts.active > 0) return AVAILABLE;
  const cooldown = counts.next_cooldown_end;
  const reset = counts.next_daily_reset;
  if (cooldown && (!reset || cooldown <= reset)) {
    return { available: false, reason: 'cooling_down', availableAgainAt: cooldown };
  }
  if (reset) return { available: false, reason: 'daily_limit_reached', availableAgainAt: reset };
  return { available: false, reason: 'all_disabled', availableAgainAt: null };
}

/** Reads the pools' states; one instance per process, shared by the providers view and task ETAs. */
export class CredentialAvailability {
  constructor(
    private readonly db: Queryable,
    /** False when secrets cannot be opened here (no EASEL_SECRET_KEY with an external database). */
    readonly hasSecretKey: boolean,
  ) {}

  /** Every pool's counts, keyed by pool name; pools without credentials are absent. */
  async pools(): Promise<Map<string, PoolStateCounts>> {
    return new Map((await countCredentialStates(this.db)).map((row) => [row.provider, row]));
  }

  static countsOf(pools: Map<string, PoolStateCounts>, pool: string): PoolStateCounts {
    return pools.get(pool) ?? { ...EMPTY, provider: pool };
  }

  async of(pool: string): Promise<Availability> {
    return availabilityOf(CredentialAvailability.countsOf(await this.pools(), pool), this.hasSecretKey);
  }
}
