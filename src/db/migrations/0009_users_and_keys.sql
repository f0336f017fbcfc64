-- Users with roles, and API keys. A request's key names its user; the built-in local user
-- (0001) is the admin that keyless requests act as in local mode.
ALTER TABLE users
  ADD COLUMN email      text,
  ADD COLUMN role       text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  -- Deleted users keep their tasks and ledger for the record; their keys stop working.
  ADD COLUMN deleted_at timestamptz,
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
-- Email is how existing deployments find users; unique among live users, case-insensitively.
CREATE UNIQUE INDEX users_email ON users (lower(email)) WHERE email IS NOT NULL AND deleted_at IS NULL;
UPDATE users SET role = 'admin' WHERE id = '00000000-0000-0000-0000-000000000001';

CREATE TABLE api_keys (
  id            uuid PRIMARY KEY,
  user_id       uuid NOT NULL REFERENCES users (id),
  -- SHA-256 of the whole key (hex). The key is 256 random bits, so a plain hash is enough: no
  -- guessing can find a preimage, and lookup is one index probe.
  key_hash      text NOT NULL UNIQUE,
  -- The key's visible start (`easel_sk_` and 8 characters), to tell keys apart in lists.
  display       text NOT NULL,
  name          text NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);
