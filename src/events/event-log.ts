import type { Queryable } from '../db/pool.js';
import { TaskEventType, type TaskStatus } from '../domain/task.js';
import type { EventCursor } from './cursor.js';

export interface TaskEvent {
  cursor: EventCursor;
  taskId: string;
  userId: string;
  type: TaskEventType;
  data: Record<string, unknown>;
  at: Date;
}

/**
 * The transaction id is read as text (`tx`, xid8 exceeds 2^53) under another name than the
 * column: in PostgreSQL a bare `ORDER BY tx_id` picks an output column of that name before the
 * table's, and would sort "1000" before "999". Queries here qualify every column they order by.
 */
interface EventRow {
  id: number;
  tx: string;
  task_id: string;
  user_id: string;
  type: TaskEventType;
  data: Record<string, unknown>;
  created_at: Date;
}

const toEvent = (row: EventRow): TaskEvent => ({
  cursor: { txId: row.tx, id: row.id },
  taskId: row.task_id,
  userId: row.user_id,
  type: row.type,
  data: row.data,
  at: row.created_at,
});

/** Rows below this horizon can no longer appear: every transaction that could add one is over. */
const HORIZON = `pg_snapshot_xmin(pg_current_snapshot())`;

export interface EventScope {
  userId?: string | undefined;
  taskId?: string | undefined;
}

/**
 * Events after `after`, up to `until` when given, in log order. Only settled events (below the
 * horizon) are returned, so reading again from the last one returned never skips or repeats.
 */
export async function readEvents(
  db: Queryable,
  scope: EventScope,
  after: EventCursor,
  options: { until?: EventCursor | undefined; limit: number },
): Promise<TaskEvent[]> {
  const { rows } = await db.query<EventRow>({
    name: 'easel_read_events',
    text: `SELECT e.id, e.tx_id::text AS tx, e.task_id, e.user_id, e.type, e.data, e.created_at FROM task_events e
           WHERE (e.tx_id, e.id) > ($1::xid8, $2::bigint) AND e.tx_id < ${HORIZON}
             AND ($3::xid8 IS NULL OR (e.tx_id, e.id) <= ($3::xid8, $4::bigint))
             AND ($5::uuid IS NULL OR e.user_id = $5) AND ($6::uuid IS NULL OR e.task_id = $6)
           ORDER BY e.tx_id, e.id LIMIT $7`,
    values: [
      after.txId,
      after.id,
      options.until?.txId ?? null,
      options.until?.id ?? 0,
      scope.userId ?? null,
      scope.taskId ?? null,
      options.limit,
    ],
  });
  return rows.map(toEvent);
}

/** The newest settled position: where a fresh reader starts so it sees only what comes next. */
export async function latestCursor(db: Queryable): Promise<EventCursor> {
  const { rows } = await db.query<{ tx: string; id: number }>(
    `SELECT e.tx_id::text AS tx, e.id FROM task_events e WHERE e.tx_id < ${HORIZON}
     ORDER BY e.tx_id DESC, e.id DESC LIMIT 1`,
  );
  return rows[0] ? { txId: rows[0].tx, id: rows[0].id } : { txId: '0', id: 0 };
}

/**
 * True when committed events wait above the horizon for an older transaction to end. That
 * transaction may send no NOTIFY of its own when it does, so the reader should look again soon.
 */
export async function hasUnsettledEvents(db: Queryable, after: EventCursor): Promise<boolean> {
  const { rows } = await db.query<{ waiting: boolean }>({
    name: 'easel_unsettled_events',
    text: `SELECT EXISTS (SELECT 1 FROM task_events WHERE (tx_id, id) > ($1::xid8, $2::bigint)
             AND tx_id >= ${HORIZON}) AS waiting`,
    values: [after.txId, after.id],
  });
  return rows[0]?.waiting ?? false;
}

/** The events after which a task has nothing more to say, unless someone retries it. */
export const FINAL_EVENT_TYPES: readonly TaskEventType[] = [
  TaskEventType.succeeded,
  TaskEventType.failed,
  TaskEventType.canceled,
];

export const isFinalEvent = (event: Pick<TaskEvent, 'type'>): boolean => FINAL_EVENT_TYPES.includes(event.type);

/** A task's status and the position of its latest final event, read together. */
export interface TaskEnding {
  status: TaskStatus;
  /** Undefined when the task never finished, or retention pruned the event. */
  lastFinalEvent: EventCursor | undefined;
}

/**
 * The caller's task with its latest final event, from one snapshot: a task stream needs both
 * to tell the final event that ends it from one that a retry has since superseded.
 */
/** `owner`: the caller's user id, or null for an admin following any user's task by id. */
export async function findTaskEnding(
  db: Queryable,
  owner: string | null,
  taskId: string,
): Promise<TaskEnding | undefined> {
  const { rows } = await db.query<{ status: TaskStatus; tx: string | null; id: number | null }>({
    name: 'easel_task_ending',
    text: `SELECT t.status, f.tx, f.id FROM tasks t
           LEFT JOIN LATERAL (
             SELECT e.tx_id::text AS tx, e.id FROM task_events e
             WHERE e.task_id = t.id AND e.type = ANY($3::text[])
             ORDER BY e.tx_id DESC, e.id DESC LIMIT 1
           ) f ON true
           WHERE t.id = $1 AND ($2::uuid IS NULL OR t.user_id = $2)`,
    values: [taskId, owner, FINAL_EVENT_TYPES],
  });
  const row = rows[0];
  if (!row) return undefined;
  return {
    status: row.status,
    lastFinalEvent: row.tx !== null && row.id !== null ? { txId: row.tx, id: row.id } : undefined,
  };
}
