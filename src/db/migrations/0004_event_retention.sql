-- Event retention: task_events is pruned from the head of the log (oldest (tx_id, id) first)
-- once events are past EASEL_EVENT_RETENTION_HOURS. The low-water mark records the newest
-- position pruned: every event at or before it may be gone, every event after it is kept.
-- A client resuming from before the mark is told to re-read its tasks instead of getting a gap.
-- Pruning walks the existing task_events_order index, so inserts pay for no new index.
CREATE TABLE task_event_retention (
  singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  pruned_through_tx  xid8 NOT NULL DEFAULT '0',
  pruned_through_id  bigint NOT NULL DEFAULT 0,
  pruned_at          timestamptz
);
INSERT INTO task_event_retention DEFAULT VALUES;
