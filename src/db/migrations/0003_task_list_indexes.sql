-- Task lists filter by status and provider, newest first. Without these, a filter walks the
-- user's whole history backwards on tasks_by_user, discarding every row that does not match
-- (400 ms at 400k tasks when the match is rare). Each index serves one filter shape of
-- listTasks (src/tasks/queries.ts) as an ordered range: the query reads at most limit + 1
-- entries, however long the history. tasks_by_user (0001) serves the unfiltered list.
-- Status changes are not HOT updates anyway (tasks_queued's predicate reads status), so these
-- add index writes only on inserts and status changes.
CREATE INDEX tasks_by_user_status ON tasks (user_id, status, id);
CREATE INDEX tasks_by_user_provider ON tasks (user_id, provider, id);
CREATE INDEX tasks_by_user_provider_status ON tasks (user_id, provider, status, id);
