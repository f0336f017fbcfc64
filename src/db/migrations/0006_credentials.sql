-- The credential pool: provider secrets (API tokens) encrypted at rest, with the limits and the
-- state that claim-time selection reads. The secret itself is never stored in clear: only its
-- AES-256-GCM ciphertext (src/credentials/secret-box.ts), an HMAC fingerprint to refuse
-- duplicates, and its last 4 characters for display.
CREATE TABLE credentials (
  id                    uuid PRIMARY KEY,
  -- The same pattern as PROVIDER_ID_PATTERN in src/providers/registry.ts.
  provider              text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  label                 text NOT NULL,
  secret_ciphertext     bytea NOT NULL,
  -- HMAC-SHA256 of the secret under a key derived from the encryption key (hex): the same
  -- secret is never stored twice for one provider, and the fingerprint reveals nothing.
  secret_fingerprint    text NOT NULL,
  secret_last4          text NOT NULL,
  concurrency           integer NOT NULL DEFAULT 1 CHECK (concurrency >= 1),
  -- NULL = no daily limit.
  daily_limit           integer CHECK (daily_limit >= 1),
  -- The day of `used_today` starts at this UTC hour.
  daily_reset_utc_hour  smallint NOT NULL DEFAULT 0 CHECK (daily_reset_utc_hour BETWEEN 0 AND 23),
  -- Uses counted on `usage_day` (the usage day, which starts at the reset hour); a row whose
  -- usage_day is not the current usage day has used nothing today.
  used_today            integer NOT NULL DEFAULT 0 CHECK (used_today >= 0),
  usage_day             date,
  cooldown_until        timestamptz,
  -- Non-NULL = disabled (by an admin, or by an authentication failure), with why.
  disabled_reason       text,
  last_error_code       text,
  last_error_at         timestamptz,
  last_used_at          timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, secret_fingerprint)
);
-- Selection reads a provider's credentials, least recently used first.
CREATE INDEX credentials_by_provider ON credentials (provider, last_used_at NULLS FIRST);
