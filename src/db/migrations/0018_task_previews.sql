-- Progress previews: the latest intermediate image of a running task (A1111's live preview,
-- ComfyUI's frames), so that every API process can serve it. Small bytes in PostgreSQL rather
-- than storage objects: nothing to garbage-collect, shared by all machines, and gone with the
-- attempt. The worker throttles and size-caps what it writes (src/worker/progress-reporter.ts).

-- The version of the current preview, bumped on each write; null when the task has none. It
-- is on the task row so the task resource and progress events can link `?v=<version>` without
-- a join.
ALTER TABLE tasks ADD COLUMN preview_version integer;

CREATE TABLE task_previews (
  task_id      uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
  content_type text NOT NULL,
  data         bytea NOT NULL,
  version      integer NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A preview belongs to one attempt: when the task leaves `running` (success, failure, cancel,
-- retry, rescue, release) or is claimed again under a new lease, the preview goes. A trigger
-- does it so that no statement ending an attempt can forget; its WHEN clause keeps it free for
-- tasks that never had a preview.
CREATE FUNCTION easel_drop_task_preview() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.preview_version := NULL;
  DELETE FROM task_previews WHERE task_id = NEW.id;
  RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_drop_preview
  BEFORE UPDATE OF status, lease_token ON tasks
  FOR EACH ROW
  WHEN (OLD.preview_version IS NOT NULL
        AND (NEW.status <> 'running' OR NEW.lease_token IS DISTINCT FROM OLD.lease_token))
  EXECUTE FUNCTION easel_drop_task_preview();
