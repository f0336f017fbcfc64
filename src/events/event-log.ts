import type { Queryable } from '../db/pool.js';
import type { TaskEventType } from '../domain/task.js';
import type { EventCursor } from './cursor.js';

export interface TaskEvent {
  cursor: EventCursor;
  taskId: string;
  userId: string;
  type: TaskEventType;
  data: Record<string, unknown>;
  at: Date;
}

interface EventRow {
  id: number;
  tx_id: string;
  task_id: string;
  user_id: string;
  type: TaskEventType;
  data: Record<string, unknown>;
  created_at: Date;
}

const toEvent = (row: EventRow): TaskEvent => ({
  cursor: { txId: row.tx_id, id: row.id },
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
    text: `SELECT id, tx_id::text, task_id, user_id, type, data, created_at FROM task_events
           WHERE (tx_id, id) > ($1::xid8, $2::bigint) AND tx_id < ${HORIZON}
             AND ($3::xid8 IS NULL OR (tx_id, id) <= ($3::xid8, $4::bigint))
             AND ($5::uuid IS NULL OR user_id = $5) AND ($6::uuid IS NULL OR task_id = $6)
           ORDER BY tx_id, id LIMIT $7`,
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
  const { rows } = await db.query<{ tx_id: string; id: number }>(
    `SELECT tx_id::text, id FROM task_events WHERE tx_id < ${HORIZON} ORDER BY tx_id DESC, id DESC LIMIT 1`,
  );
  return rows[0] ? { txId: rows[0].tx_id, id: rows[0].id } : { txId: '0', id: 0 };
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
