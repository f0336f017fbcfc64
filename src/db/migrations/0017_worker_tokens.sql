-- Remote workers: GPU machines that reach Easel only over its HTTP API, each with a worker
-- token an admin created. A worker token can call the /v1/worker/ routes and nothing else.
CREATE TABLE worker_tokens (
  id            uuid PRIMARY KEY,
  label         text NOT NULL,
  -- SHA-256 of the whole token (hex). 256 random bits, so a plain hash suffices (as api_keys).
  token_sha256  text NOT NULL UNIQUE,
  -- The token's visible start (`easel_wk_` and 8 characters), to tell tokens apart in lists.
  display       text NOT NULL,
  created_by    uuid REFERENCES users (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz,
  last_seen_at  timestamptz
);

-- Which token a worker row belongs to (NULL: a local worker with database access), and what the
-- remote worker said about itself, for the admin's view of who serves what.
ALTER TABLE workers
  ADD COLUMN token_id  uuid REFERENCES worker_tokens (id) ON DELETE SET NULL,
  ADD COLUMN providers text[],
  ADD COLUMN version   text;
