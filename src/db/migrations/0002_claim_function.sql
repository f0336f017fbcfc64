-- Claims as one function (bind parameters, one round trip), and the one rule for "is this
-- worker alive" that claims and the rescuer share.

-- A worker is alive while heard from within dead-after. Silence counts from the later of its
-- last heartbeat and the server's start: right after a database restart every heartbeat looks
-- old, but no worker could have reached the server while it was down. A worker with no row
-- (unregistered on shutdown, or pruned) is not alive.
CREATE FUNCTION easel_worker_alive(last_seen_at timestamptz, dead_after_ms double precision)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN last_seen_at IS NOT NULL
   AND greatest(last_seen_at, pg_postmaster_start_time()) >= now() - make_interval(secs => dead_after_ms / 1000);

-- Claim up to `want` runnable tasks of one provider for one worker, never letting more than
-- `provider_limit` attempts of that provider run at once on live workers (an orphan of a dead
-- worker awaits rescue and holds no slot). Returns the claimed rows, each with a fresh lease.
--
-- Claims of one provider are serialised by a transaction-scoped advisory lock, held until the
-- caller's transaction commits. The lock must be granted BEFORE the statements that count and
-- pick take their snapshots, or two claimers could both see the same free slots. Here that
-- holds because a VOLATILE PL/pgSQL function under READ COMMITTED takes a fresh snapshot for
-- each statement, after the lock statement returned; the previous claimer's commit became
-- visible before its lock was released. Hence the isolation check: under REPEATABLE READ or
-- SERIALIZABLE the snapshot would be the transaction's first one.
CREATE FUNCTION easel_claim(
  claim_provider text,
  want integer,
  provider_limit integer,
  claim_worker_id uuid,
  dead_after_ms double precision
) RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  live_running integer;
BEGIN
  -- A NULL would silently count no running task and lift the limit.
  IF claim_provider IS NULL OR want IS NULL OR provider_limit IS NULL OR claim_worker_id IS NULL OR dead_after_ms IS NULL THEN
    RAISE EXCEPTION 'easel_claim: every argument is required';
  END IF;
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'easel_claim needs READ COMMITTED, not %', current_setting('transaction_isolation');
  END IF;
  -- Losing a claim in a crash is harmless (the task is simply queued again): no waiting for the disk.
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM pg_advisory_xact_lock(hashtextextended('easel:claim:' || claim_provider, 0));

  SELECT count(*) INTO live_running
  FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
  WHERE t.status = 'running' AND t.provider = claim_provider
    AND easel_worker_alive(w.last_seen_at, dead_after_ms);

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
      started_at = now(), updated_at = now(), stage = 'starting', progress = 0, error = NULL
  FROM picked WHERE t.id = picked.id
  RETURNING t.*;
END
$$;
