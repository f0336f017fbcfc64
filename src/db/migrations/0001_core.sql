-- Core schema: users, tasks (the record and the queue), images, events, workers.

CREATE TABLE users (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- The built-in local user owns every request until API keys arrive.
INSERT INTO users (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'local');

CREATE TABLE tasks (
  id                  uuid PRIMARY KEY,           -- UUIDv7: sorts by creation time
  user_id             uuid NOT NULL REFERENCES users (id),
  kind                text NOT NULL CHECK (kind IN ('txt2img', 'img2img')),
  provider            text NOT NULL,
  model               text NOT NULL,
  params              jsonb NOT NULL,             -- prompt, size, steps, seed, … as validated
  provider_options    jsonb NOT NULL DEFAULT '{}',
  priority            smallint NOT NULL CHECK (priority BETWEEN 0 AND 10),
  -- Queue order ascends, priority descends: rank lets one index serve both directions.
  rank                smallint GENERATED ALWAYS AS (10 - priority) STORED,
  -- Start-time fair-queuing tag: max(provider clock, user's last tag) + 1 at enqueue.
  vtime               bigint NOT NULL,
  status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
  stage               text,
  progress            smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  attempt             smallint NOT NULL DEFAULT 0,
  max_attempts        smallint NOT NULL CHECK (max_attempts >= 1),
  rescues             smallint NOT NULL DEFAULT 0,
  run_after           timestamptz NOT NULL DEFAULT now(),
  worker_id           uuid,
  -- Fresh on every claim; every write of an attempt is fenced by it.
  lease_token         uuid,
  provider_ref        text,
  cancel_requested_at timestamptz,
  idempotency_key     text,
  request_hash        text,
  error               jsonb,                      -- {code, message}
  predict_time        double precision,           -- seconds the provider spent on the last attempt
  created_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  finished_at         timestamptz,
  updated_at          timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- The hot set: claims and queue positions scan only queued rows, however long history grows.
CREATE INDEX tasks_queued ON tasks (provider, rank, vtime, id) WHERE status = 'queued';
CREATE INDEX tasks_running ON tasks (provider, worker_id) WHERE status = 'running';
CREATE INDEX tasks_by_user ON tasks (user_id, id);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_recent_finished ON tasks (provider, finished_at) WHERE status = 'succeeded';

-- Per-provider virtual clock (the tag of the last task claimed) and a count of claims, which
-- lets queue positions be estimated from a snapshot without recounting the whole queue.
CREATE TABLE provider_clocks (
  provider       text PRIMARY KEY,
  vclock         bigint NOT NULL DEFAULT 0,
  claimed_total  bigint NOT NULL DEFAULT 0
);

-- Each user's last fair-queuing tag per provider.
CREATE TABLE user_clocks (
  provider    text NOT NULL,
  user_id     uuid NOT NULL REFERENCES users (id),
  last_vtime  bigint NOT NULL,
  PRIMARY KEY (provider, user_id)
);

CREATE TABLE task_images (
  task_id       uuid NOT NULL REFERENCES tasks (id),
  index         smallint NOT NULL,
  storage_key   text NOT NULL,
  content_type  text NOT NULL,
  bytes         integer NOT NULL,
  width         integer NOT NULL,
  height        integer NOT NULL,
  seed          bigint NOT NULL,
  sha256        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, index)                   -- an image is recorded at most once
);

-- Append-only. Readers page by (tx_id, id) below the oldest running transaction, so an event
-- committed late by a slow transaction is never skipped and never seen twice.
CREATE TABLE task_events (
  id          bigserial PRIMARY KEY,
  tx_id       xid8 NOT NULL DEFAULT pg_current_xact_id(),
  task_id     uuid NOT NULL,
  user_id     uuid NOT NULL,
  type        text NOT NULL,
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_events_order ON task_events (tx_id, id);
CREATE INDEX task_events_by_user ON task_events (user_id, tx_id, id);
CREATE INDEX task_events_by_task ON task_events (task_id, tx_id, id);

CREATE TABLE workers (
  id            uuid PRIMARY KEY,
  host          text NOT NULL,
  pid           integer NOT NULL,
  concurrency   integer NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now()
);
