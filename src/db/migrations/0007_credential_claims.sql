-- Claim-time credential selection: a task of a provider with a credential pool is claimed only
-- together with a usable credential of that pool, and the task row records which one.

-- The credential an attempt runs with; kept after the attempt for the record (which credential
-- served the task). Only running rows count against a credential's concurrency. No foreign key:
-- deleting a credential must not wait on, or rewrite, the task history.
ALTER TABLE tasks ADD COLUMN credential_id uuid;
CREATE INDEX tasks_running_by_credential ON tasks (credential_id) WHERE status = 'running';

-- The usage day of a credential starts at its reset hour (UTC); `used_today` counts uses made
-- on `usage_day` and means nothing on any other day. One definition for claims and views.
CREATE FUNCTION easel_usage_day(reset_utc_hour smallint)
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
RETURN ((now() AT TIME ZONE 'UTC') - make_interval(hours => reset_utc_hour))::date;

-- Replaces the claim of migration 0002 with one that also picks credentials.
--
-- `credential_pool` NULL: as before. Otherwise each claimed task gets a credential of that pool
-- that is not disabled, not cooling down, under its daily limit and has free concurrency
-- (counting running tasks of live workers, across every provider drawing on the pool). Slots
-- are dealt round-robin, least recently used credential first, so work spreads across
-- credentials; a credential's use today counts up at claim, so a daily limit is never passed.
-- The number claimed is the least of `want`, the provider's free slots, and the credentials'
-- free slots: the queue never claims a task that no credential can run.
--
-- The advisory lock is the pool's (or the provider's, without a pool): providers sharing a pool
-- (the Hugging Face router and Spaces) serialise their claims, so two claimers never both see
-- the same free credential slot. See 0002 for why the lock comes before every snapshot.
DROP FUNCTION easel_claim(text, integer, integer, uuid, double precision);
CREATE FUNCTION easel_claim(
  claim_provider text,
  want integer,
  provider_limit integer,
  claim_worker_id uuid,
  dead_after_ms double precision,
  credential_pool text
) RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  live_running integer;
BEGIN
  IF claim_provider IS NULL OR want IS NULL OR provider_limit IS NULL OR claim_worker_id IS NULL OR dead_after_ms IS NULL THEN
    RAISE EXCEPTION 'easel_claim: every argument but credential_pool is required';
  END IF;
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'easel_claim needs READ COMMITTED, not %', current_setting('transaction_isolation');
  END IF;
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM pg_advisory_xact_lock(hashtextextended('easel:claim:' || coalesce(credential_pool, claim_provider), 0));

  SELECT count(*) INTO live_running
  FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
  WHERE t.status = 'running' AND t.provider = claim_provider
    AND easel_worker_alive(w.last_seen_at, dead_after_ms);

  IF credential_pool IS NULL THEN
    RETURN QUERY
    WITH picked AS MATERIALIZED (
      SELECT q.id FROM tasks q
      WHERE q.status = 'queued' AND q.provider = claim_provider AND q.run_after <= now()
      ORDER BY q.rank, q.vtime, q.id
      LIMIT greatest(0, least(want, provider_limit - live_running))
      FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks t
    SET status = 'running', attempt = t.attempt + 1, worker_id = claim_worker_id, lease_token = gen_random_uuid(),
        started_at = now(), updated_at = now(), stage = 'starting', progress = 0, error = NULL, credential_id = NULL
    FROM picked WHERE t.id = picked.id
    RETURNING t.*;
    RETURN;
  END IF;

  RETURN QUERY
  WITH slots AS MATERIALIZED (
    -- Free slots per usable credential, dealt round-robin: slot 1 of every credential (least
    -- recently used first), then slot 2, and so on.
    SELECT row_number() OVER (ORDER BY n, u.last_used_at NULLS FIRST, u.id) AS slot, u.id AS credential_id
    FROM (
      SELECT c.id, c.last_used_at,
             c.concurrency - (SELECT count(*) FROM tasks r LEFT JOIN workers w ON w.id = r.worker_id
                              WHERE r.status = 'running' AND r.credential_id = c.id
                                AND easel_worker_alive(w.last_seen_at, dead_after_ms))::integer AS free,
             CASE WHEN c.daily_limit IS NULL THEN NULL
                  ELSE c.daily_limit - CASE WHEN c.usage_day = easel_usage_day(c.daily_reset_utc_hour)
                                            THEN c.used_today ELSE 0 END END AS left_today
      FROM credentials c
      WHERE c.provider = credential_pool AND c.disabled_reason IS NULL
        AND (c.cooldown_until IS NULL OR c.cooldown_until <= now())
    ) u, generate_series(1, least(u.free, coalesce(u.left_today, u.free))) AS n
  ), locked AS MATERIALIZED (
    SELECT q.id, q.rank, q.vtime FROM tasks q
    WHERE q.status = 'queued' AND q.provider = claim_provider AND q.run_after <= now()
    ORDER BY q.rank, q.vtime, q.id
    LIMIT greatest(0, least(want, provider_limit - live_running, (SELECT count(*) FROM slots)))
    FOR UPDATE SKIP LOCKED
  ), assigned AS MATERIALIZED (
    SELECT p.id, s.credential_id
    FROM (SELECT l.id, row_number() OVER (ORDER BY l.rank, l.vtime, l.id) AS slot FROM locked l) p
    JOIN slots s ON s.slot = p.slot
  ), used AS (
    UPDATE credentials c
    SET used_today = CASE WHEN c.usage_day = easel_usage_day(c.daily_reset_utc_hour) THEN c.used_today ELSE 0 END + a.n,
        usage_day = easel_usage_day(c.daily_reset_utc_hour),
        last_used_at = now()
    FROM (SELECT credential_id, count(*)::integer AS n FROM assigned GROUP BY credential_id) a
    WHERE c.id = a.credential_id
  )
  UPDATE tasks t
  SET status = 'running', attempt = t.attempt + 1, worker_id = claim_worker_id, lease_token = gen_random_uuid(),
      started_at = now(), updated_at = now(), stage = 'starting', progress = 0, error = NULL,
      credential_id = assigned.credential_id
  FROM assigned WHERE t.id = assigned.id
  RETURNING t.*;
END
$$;
