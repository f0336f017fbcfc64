-- Named model routes: a task submitted to a route carries its plan (the targets that can serve
-- it, which one it is on, when it got there, and what failed before) and moves to the next
-- target when one fails for provider-side reasons. NULL for tasks submitted to a provider.
ALTER TABLE tasks ADD COLUMN route jsonb;

-- The rescue pass looks for routed tasks stuck on a target without usable credentials.
CREATE INDEX tasks_queued_routed ON tasks (provider) WHERE status = 'queued' AND route IS NOT NULL;

-- Whether a credential can take work now (the claim in 0007 additionally counts free slots).
-- One definition for the rescue pass and the credential views.
CREATE FUNCTION easel_credential_state(c credentials)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
  WHEN c.disabled_reason IS NOT NULL THEN 'disabled'
  WHEN c.cooldown_until > now() THEN 'cooling_down'
  WHEN c.daily_limit IS NOT NULL
   AND (CASE WHEN c.usage_day = easel_usage_day(c.daily_reset_utc_hour) THEN c.used_today ELSE 0 END) >= c.daily_limit
  THEN 'exhausted'
  ELSE 'active'
END;
