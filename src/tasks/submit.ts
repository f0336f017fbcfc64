import { uuidv7 } from 'uuidv7';
import type { Queryable } from '../db/pool.js';
import { TaskEventType, type TaskParams } from '../domain/task.js';
import type { TaskKind } from '../providers/types.js';
import { insertEventsSql, notifyEventsSql, notifyReadySql, sqlLiteral } from './events.js';
import type { TaskRow } from './rows.js';

export interface NewTask {
  userId: string;
  kind: TaskKind;
  provider: string;
  model: string;
  params: TaskParams;
  providerOptions: Record<string, unknown>;
  priority: number;
  maxAttempts: number;
  /** With a key, a repeated submit returns the first task instead of making another. */
  idempotencyKey?: string | undefined;
  /** Fingerprint of the request body, to tell a replay from a different request under the same key. */
  requestHash?: string | undefined;
}

/**
 * One statement, one durable commit: take the user's fair-queuing tag, insert the task, record
 * `task:queued`, wake the workers. The tag is max(provider clock, user's last tag) + 1, so a
 * user's burst is spread out behind everyone else's next task instead of in front of it.
 */
const INSERT_TASK = `
WITH tag AS (
  INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
  VALUES ($4, $2, coalesce((SELECT vclock FROM provider_clocks WHERE provider = $4), 0) + 1)
  ON CONFLICT (provider, user_id) DO UPDATE SET last_vtime = greatest(uc.last_vtime + 1, EXCLUDED.last_vtime)
  RETURNING last_vtime
), task AS (
  INSERT INTO tasks (id, user_id, kind, provider, model, params, provider_options, priority, vtime,
                     max_attempts, idempotency_key, request_hash)
  SELECT $1, $2, $3, $4, $5, $6, $7, $8, tag.last_vtime, $9, $10, $11 FROM tag
  ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *
), event AS (
  ${insertEventsSql('task', sqlLiteral(TaskEventType.queued))}
)
SELECT task.*, ${notifyReadySql('task.provider')}, ${notifyEventsSql} FROM task`;

const FIND_BY_KEY = `SELECT * FROM tasks WHERE user_id = $1 AND idempotency_key = $2`;

export type SubmitOutcome =
  | { kind: 'created'; task: TaskRow }
  | { kind: 'replayed'; task: TaskRow }
  | { kind: 'key_conflict'; task: TaskRow };

export async function submitTask(db: Queryable, input: NewTask): Promise<SubmitOutcome> {
  if (input.idempotencyKey !== undefined) {
    const existing = await findByKey(db, input);
    if (existing) return existing;
  }
  const { rows } = await db.query<TaskRow>({
    name: 'easel_submit_task',
    text: INSERT_TASK,
    values: [
      uuidv7(),
      input.userId,
      input.kind,
      input.provider,
      input.model,
      input.params,
      input.providerOptions,
      input.priority,
      input.maxAttempts,
      input.idempotencyKey ?? null,
      input.requestHash ?? null,
    ],
  });
  if (rows[0]) return { kind: 'created', task: rows[0] };
  // Lost a race with a concurrent submit under the same key: the winner's row is committed now.
  const winner = await findByKey(db, input);
  if (!winner) throw new Error('idempotent submit found neither a new nor an existing task');
  return winner;
}

async function findByKey(db: Queryable, input: NewTask): Promise<SubmitOutcome | undefined> {
  const { rows } = await db.query<TaskRow>(FIND_BY_KEY, [input.userId, input.idempotencyKey]);
  const task = rows[0];
  if (!task) return undefined;
  return task.request_hash === (input.requestHash ?? null) ? { kind: 'replayed', task } : { kind: 'key_conflict', task };
}
