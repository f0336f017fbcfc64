-- Charges owed to the external licence API (LICENSE_API_ENDPOINT, docs/billing.md "External
-- billing"). A row is written by the statement that marks the task succeeded (tasks/attempt.ts),
-- so a success and its charge commit together or not at all; workers' settler (and
-- `easel billing reconcile`) send it later, so a slow or absent licence API never delays or fails
-- a task. One row per task (a task is captured at most once in its life, 0010), and the task id is
-- the idempotency reference sent with the deduction, so a resend cannot charge twice.
CREATE TABLE external_charges (
  id             bigserial PRIMARY KEY,
  task_id        uuid NOT NULL UNIQUE REFERENCES tasks (id),
  user_id        uuid NOT NULL REFERENCES users (id),
  -- The user's email when the task succeeded: the licence API's account.
  email          text NOT NULL,
  amount         bigint NOT NULL CHECK (amount > 0),
  -- pending: not yet confirmed by the licence API (unreachable, timed out, 5xx): sent again.
  -- settled: the licence API confirmed the deduction. failed: it refused it (a 4xx other than
  -- 408/429); not sent again, left for an operator.
  status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'settled', 'failed')),
  attempts       integer NOT NULL DEFAULT 0,
  last_error     text,
  -- A sender's lease: another settler skips the row until then, so two never send it at once.
  claimed_until  timestamptz,
  -- After a failed send, workers' settler waits until then (backoff); `easel billing reconcile`
  -- does not wait.
  retry_at       timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  settled_at     timestamptz
);
CREATE INDEX external_charges_unreconciled ON external_charges (task_id) WHERE status <> 'settled';
