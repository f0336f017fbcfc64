-- Retention (docs/retention.md): images expire, old finished tasks go, objects no row records go.
--
-- An expired image keeps its row (index, size, sha256, seed: what the task made) with
-- expired_at set; its bytes are gone and its URL answers 410 IMAGE_EXPIRED.
ALTER TABLE task_images ADD COLUMN expired_at timestamptz;

-- Keys whose objects must be deleted: written in the same transaction that marks an image
-- expired or deletes the rows that recorded them, and removed only once storage confirmed the
-- delete. So a gc killed between its commit and its deletes leaves a list to finish, never an
-- object nothing records nor a live row pointing at a deleted object.
CREATE TABLE storage_deletions (
  key        text PRIMARY KEY,
  queued_at  timestamptz NOT NULL DEFAULT now()
);

-- gc's walks: images not yet expired by age, finished tasks by age, and "is this key recorded?"
-- for every listed object. Each is a small index beside the hot queue indexes.
CREATE INDEX task_images_unexpired ON task_images (created_at) WHERE expired_at IS NULL;
CREATE INDEX task_images_by_key ON task_images (storage_key);
-- 0013's tasks_finished covers succeeded and failed only; gc deletes canceled tasks too.
CREATE INDEX tasks_finished_any ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX tasks_by_input_key ON tasks ((input_image ->> 'storage_key')) WHERE input_image IS NOT NULL;
CREATE INDEX uploads_by_key ON uploads (storage_key);
CREATE INDEX uploads_by_age ON uploads (created_at);
-- Whether a task has money records, and the foreign-key check when gc deletes a task, look the
-- ledger up by task; without this each deleted task would scan the whole ledger.
CREATE INDEX credit_ledger_by_task ON credit_ledger (task_id) WHERE task_id IS NOT NULL;
