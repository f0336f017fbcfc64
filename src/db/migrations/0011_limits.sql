-- Limits (issue 7): per-user priority ceilings and per-key request rates.

-- A user's highest allowed task priority; NULL = the role's default (5 for users, 10 for admins,
-- src/limits/priority.ts). Set by admins through the users routes.
ALTER TABLE users
  ADD COLUMN max_priority smallint CHECK (max_priority BETWEEN 0 AND 10);

-- Submits count a user's queued and running tasks (EASEL_USER_MAX_ACTIVE_TASKS) under the user's
-- lock: two ranges of tasks_by_user_status (0003), (user_id, 'queued') and (user_id, 'running'),
-- so the count reads the active tasks only, never the user's history. No index of its own: a
-- partial one on the active tasks tempted the planner into reading the whole queue for the
-- admin's status filter (test/integration/admin-plans.test.ts).

-- Requests per API key in the current fixed one-minute window (EASEL_KEY_RATE_PER_MINUTE). One
-- row per key, rewritten in place when a new minute starts, so the table never grows with time.
-- Shared by every API process: the count is one upsert per request.
CREATE TABLE api_key_request_windows (
  key_id        uuid PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
  window_start  timestamptz NOT NULL,
  requests      integer NOT NULL
);
