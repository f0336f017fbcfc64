-- Credits: a balance per user, holds per task attempt-chain, and an append-only ledger.
-- Every amount is integer micro-credits (1 credit = 1 000 000), never a float.
--
-- Invariants, checked by the tests after every scenario:
--   credit_accounts.balance = sum(credit_ledger.amount) per user
--   credit_accounts.held    = sum(credit_ledger.held)   per user = sum(amount of open holds)
-- Exactly once: a hold is captured at most once and released at most once (unique (hold_id,
-- kind)), a task is captured at most once in its life (unique task_id for captures), and a task
-- has at most one open hold. Each of these writes happens in the transaction that changes the
-- task's status, so a crash leaves either both or neither.

CREATE TABLE credit_accounts (
  user_id     uuid PRIMARY KEY REFERENCES users (id),
  -- May go below zero only when a per-second task ran longer than its hold estimated: the
  -- provider's time was spent and is charged; the next priced submit is refused until a top-up.
  balance     bigint NOT NULL DEFAULT 0,
  held        bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_holds (
  id          uuid PRIMARY KEY,
  task_id     uuid NOT NULL REFERENCES tasks (id),
  user_id     uuid NOT NULL REFERENCES users (id),
  -- 1 for the submit; each retry of a dead letter starts a new chain with a hold of its own.
  chain       integer NOT NULL CHECK (chain >= 1),
  amount      bigint NOT NULL CHECK (amount > 0),
  -- The prices the hold was estimated with, frozen at submit so a config change or a worker
  -- with another EASEL_PRICES cannot change what a running task costs:
  -- {"provider/model": {"unit": "per_second", "micro": 10000}, ...}, one entry per route target.
  prices      jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'captured', 'released')),
  captured    bigint CHECK (captured >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  closed_at   timestamptz,
  UNIQUE (task_id, chain)
);
CREATE UNIQUE INDEX credit_holds_one_open ON credit_holds (task_id) WHERE status = 'open';

CREATE TABLE credit_ledger (
  id               bigserial PRIMARY KEY,
  user_id          uuid NOT NULL REFERENCES users (id),
  kind             text NOT NULL
                     CHECK (kind IN ('top_up', 'hold', 'capture', 'release', 'refund', 'adjustment')),
  -- Change to the balance, and change to the amount held.
  amount           bigint NOT NULL,
  held             bigint NOT NULL DEFAULT 0,
  task_id          uuid REFERENCES tasks (id),
  hold_id          uuid REFERENCES credit_holds (id),
  -- Who caused it: the admin for top-ups and adjustments, the task's owner for holds; NULL for
  -- the system (a worker's capture, a rescue's release).
  actor_id         uuid REFERENCES users (id),
  reason           text NOT NULL DEFAULT '',
  idempotency_key  text,
  request_hash     text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (CASE kind
    WHEN 'top_up' THEN amount > 0 AND held = 0
    WHEN 'refund' THEN amount > 0 AND held = 0
    WHEN 'adjustment' THEN amount <> 0 AND held = 0
    WHEN 'hold' THEN amount = 0 AND held > 0 AND hold_id IS NOT NULL
    WHEN 'capture' THEN amount < 0 AND held < 0 AND hold_id IS NOT NULL
    WHEN 'release' THEN amount = 0 AND held < 0 AND hold_id IS NOT NULL
  END)
);
CREATE UNIQUE INDEX credit_ledger_hold_once ON credit_ledger (hold_id, kind) WHERE hold_id IS NOT NULL;
CREATE UNIQUE INDEX credit_ledger_capture_once ON credit_ledger (task_id) WHERE kind = 'capture';
CREATE UNIQUE INDEX credit_ledger_idempotency ON credit_ledger (user_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX credit_ledger_by_user ON credit_ledger (user_id, id);

-- Append-only: corrections are new entries (an adjustment), never edits.
CREATE FUNCTION easel_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'credit_ledger is append-only';
END $$;
CREATE TRIGGER credit_ledger_append_only BEFORE UPDATE OR DELETE ON credit_ledger
  FOR EACH STATEMENT EXECUTE FUNCTION easel_ledger_append_only();

-- A task that ends failed or canceled, by whatever path (a worker's outcome, a cancel of a
-- queued task, a rescue, a route that runs out of targets), releases its open hold in the same
-- transaction. A trigger rather than a clause in each of those statements, so that a path added
-- later cannot forget it.
CREATE FUNCTION easel_release_task_hold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  h credit_holds;
BEGIN
  UPDATE credit_holds SET status = 'released', closed_at = now()
  WHERE task_id = NEW.id AND status = 'open'
  RETURNING * INTO h;
  IF FOUND THEN
    UPDATE credit_accounts SET held = held - h.amount, updated_at = now() WHERE user_id = h.user_id;
    INSERT INTO credit_ledger (user_id, kind, amount, held, task_id, hold_id, reason)
    VALUES (h.user_id, 'release', 0, -h.amount, NEW.id, h.id, 'task ' || NEW.status);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER tasks_release_hold AFTER UPDATE OF status ON tasks FOR EACH ROW
  WHEN (NEW.status IN ('failed', 'canceled') AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION easel_release_task_hold();

-- What a succeeded attempt costs at the hold's frozen price for the target it ran on:
-- per_image × images made, per_second × the provider's seconds (rounded to the micro-credit),
-- per_task once. 0 for a target without a price.
CREATE FUNCTION easel_task_cost(prices jsonb, provider text, model text, seconds double precision, images integer)
RETURNS bigint LANGUAGE sql IMMUTABLE
RETURN coalesce(
  CASE prices -> (provider || '/' || model) ->> 'unit'
    WHEN 'per_image' THEN ((prices -> (provider || '/' || model) ->> 'micro')::bigint * images)
    WHEN 'per_second' THEN round((prices -> (provider || '/' || model) ->> 'micro')::numeric
                                 * greatest(coalesce(seconds, 0), 0)::numeric)::bigint
    WHEN 'per_task' THEN (prices -> (provider || '/' || model) ->> 'micro')::bigint
  END, 0);

-- Settle the task's open hold on success: capture the cost, release the rest. Called from the
-- statement that marks the task succeeded (tasks/attempt.ts), so both commit or neither. Returns
-- the cost charged (0 without an open hold: an unpriced task).
CREATE FUNCTION easel_capture_task_hold(p_task uuid, p_provider text, p_model text,
                                        p_seconds double precision, p_images integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  h credit_holds;
  cost bigint;
  from_hold bigint;
BEGIN
  SELECT * INTO h FROM credit_holds WHERE task_id = p_task AND status = 'open' FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  cost := easel_task_cost(h.prices, p_provider, p_model, p_seconds, p_images);
  from_hold := least(cost, h.amount);
  UPDATE credit_holds SET status = CASE WHEN cost > 0 THEN 'captured' ELSE 'released' END,
                          captured = cost, closed_at = now()
  WHERE id = h.id;
  UPDATE credit_accounts SET balance = balance - cost, held = held - h.amount, updated_at = now()
  WHERE user_id = h.user_id;
  IF cost > 0 THEN
    INSERT INTO credit_ledger (user_id, kind, amount, held, task_id, hold_id, reason)
    VALUES (h.user_id, 'capture', -cost, -from_hold, p_task, h.id, 'task succeeded on ' || p_provider || '/' || p_model);
  END IF;
  IF h.amount > from_hold THEN
    INSERT INTO credit_ledger (user_id, kind, amount, held, task_id, hold_id, reason)
    VALUES (h.user_id, 'release', 0, -(h.amount - from_hold), p_task, h.id, 'rest of the hold after capture');
  END IF;
  RETURN cost;
END $$;
