-- Admin views over every user's tasks (src/tasks/queries.ts without a user, dead letters, queue
-- clear, stats). The user-scoped indexes of 0003 lead with user_id, so without these a filter
-- across all users walks the whole history backwards on tasks_pkey, discarding every row that
-- does not match (a rare status or provider reads the whole table). Each serves one filter shape
-- as an ordered id range that stops after a page; tasks_pkey serves the unfiltered list and the
-- time range (ids are UUIDv7, so a creation-time bound is an id bound).
-- `status, id` also serves the dead letters (failed) and queue clear (queued, in id order).
CREATE INDEX tasks_by_status ON tasks (status, id);
CREATE INDEX tasks_by_provider ON tasks (provider, id);
CREATE INDEX tasks_by_provider_status ON tasks (provider, status, id);
-- Stats: tasks processed (succeeded or failed) per day read only the last N days' finishes.
-- tasks_recent_finished (0001) covers succeeded tasks per provider only.
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE status IN ('succeeded', 'failed');
