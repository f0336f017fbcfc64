/**
 * A per-credential cache of the short-lived tokens a provider gets by signing in with a
 * long-lived secret (NovelAI's access tokens from email + password). Entries are keyed by the
 * pool credential's id, so two accounts never share a token, and a deleted credential takes
 * its token with it. Handed to the adapter at registration: adapters import no database.
 */
export interface TokenCache {
  /**
   * The stored token of a credential. `damaged` when an entry exists but cannot be opened
   * (sealed under another key, changed on disk): the caller signs in again and overwrites it.
   */
  read(credentialId: string): Promise<CachedToken | { damaged: string } | undefined>;
  /** Store (or replace) the credential's token; `expiresAt` null when the token does not say. */
  write(credentialId: string, token: string, expiresAt: Date | null): Promise<void>;
}

export interface CachedToken {
  token: string;
  expiresAt: Date | null;
  /** Milliseconds left by the database's clock (negative once expired); null without expiry. */
  remainingMs: number | null;
}

/** No cache: every attempt signs in afresh. For tests and for processes without a database. */
export const NO_TOKEN_CACHE: TokenCache = {
  read: async () => undefined,
  write: async () => {},
};
