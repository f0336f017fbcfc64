import { uuidv7 } from 'uuidv7';
import type { Pool, Queryable } from '../db/pool.js';
import { TaskEventType, type TaskParams } from '../domain/task.js';
import type { StoredInputImage } from '../inputs/uploads.js';
import type { TaskKind } from '../providers/types.js';
import type { TaskRoute } from '../routing/task-route.js';
import type { Hints } from '../db/notifier.js';
import { ACTIVE_STATUSES_SQL, tooManyActiveTasks, withUserTaskLock } from './active-limit.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { TaskRow } from './rows.js';

export interface NewTask {
  userId: string;
  kind: TaskKind;
  provider: string;
  model: string;
  params: TaskParams;
  providerOptions: Record<string, unknown>;
  /** Submitted to a named route: its plan, starting at the first target (provider/model above). */
  route?: TaskRoute | undefined;
  /** img2img: the checked input, its bytes already in storage when the task is inserted. */
  inputImage?: StoredInputImage | undefined;
  priority: number;
  maxAttempts: number;
  /** With a key, a repeated submit returns the first task instead of making another. */
  idempotencyKey?: string | undefined;
  /** Fingerprint of the request body, to tell a replay from a different request under the same key. */
  requestHash?: string | undefined;
}

/**
 * The user's fair-queuing tag for this provider: max(provider clock, user's last tag) + 1, so a
 * user's burst is spread out behind everyone else's next task instead of in front of it.
 *
 * It is its own statement, committed without waiting for the disk (`set_config` in the CTE
 * switches synchronous_commit off for this transaction only): the row lock on the user's clock
 * is then held for microseconds instead of a disk flush, so one user's concurrent submits do
 * not queue behind each other. Losing a bump in a crash only lets two tasks share a tag, and
 * ties are broken by age.
 *
 * Because it commits on its own, a submit must refuse everything it will refuse *before* this
 * statement: validation, unknown models, a full queue and replays all answer earlier. The insert
 * after it can then fail only for reasons outside the request (the database going away), and
 * the cost of that is one notch of this user's fairness, never a task. (Taking the tag inside
 * the insert's transaction would roll it back too, but would hold the user's clock row through
 * the insert's disk flush, serialising that user's submits.)
 */
const TAKE_TAG = `
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
SELECT $1, $2, coalesce((SELECT vclock FROM provider_clocks WHERE provider = $1), 0) + 1 FROM relaxed
ON CONFLICT (provider, user_id) DO UPDATE SET last_vtime = greatest(uc.last_vtime + 1, EXCLUDED.last_vtime)
RETURNING last_vtime`;

/**
 * TAKE_TAG for a submit under EASEL_USER_MAX_ACTIVE_TASKS: no row when the user already has `$3`
 * tasks queued or running. It runs in the insert's transaction, after the user's task lock
 * (active-limit.ts), and commits durably with the task: the lock already makes one user's
 * submits take turns through that commit, so the separate relaxed commit above would buy
 * nothing here, while a refusal now rolls back the tag too and writes nothing at all.
 */
const TAKE_TAG_WITHIN_LIMIT = `
WITH active AS (
  SELECT count(*) AS n FROM (SELECT 1 FROM tasks WHERE user_id = $2 AND status IN ${ACTIVE_STATUSES_SQL} LIMIT $3) a
)
INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
SELECT $1, $2, coalesce((SELECT vclock FROM provider_clocks WHERE provider = $1), 0) + 1 FROM active WHERE active.n < $3
ON CONFLICT (provider, user_id) DO UPDATE SET last_vtime = greatest(uc.last_vtime + 1, EXCLUDED.last_vtime)
RETURNING last_vtime`;

/** One durable statement: the task and its `task:queued` event commit together. */
const INSERT_TASK = `
WITH task AS (
  INSERT INTO tasks (id, user_id, kind, provider, model, params, provider_options, priority, vtime,
                     max_attempts, idempotency_key, request_hash, input_image, route)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb || jsonb_build_object('since', now()))
  ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING *
), event AS (
  ${insertEventsSql('task', sqlLiteral(TaskEventType.queued))}
)
SELECT * FROM task`;

const FIND_BY_KEY = `SELECT * FROM tasks WHERE user_id = $1 AND idempotency_key = $2`;

export type SubmitOutcome =
  { kind: 'created'; task: TaskRow } | { kind: 'replayed'; task: TaskRow } | { kind: 'key_conflict'; task: TaskRow };

export interface SubmitOptions {
  /** Runs after the replay check and before the first write; throw to refuse (a full queue). */
  beforeWrite?: () => Promise<void>;
  /**
   * EASEL_USER_MAX_ACTIVE_TASKS: refuse (429 TOO_MANY_ACTIVE_TASKS, nothing written) when the
   * user already has this many tasks queued or running. Needs `db` to be a pool.
   */
  maxActiveTasks?: number;
}

export async function submitTask(
  db: Queryable,
  hints: Hints,
  input: NewTask,
  options: SubmitOptions = {},
): Promise<SubmitOutcome> {
  if (input.idempotencyKey !== undefined) {
    const existing = await findByKey(db, input);
    if (existing) return existing;
  }
  await options.beforeWrite?.();
  let task: TaskRow | undefined;
  if (options.maxActiveTasks === undefined) {
    const { rows: tag } = await db.query<{ last_vtime: number }>({
      name: 'easel_take_tag',
      text: TAKE_TAG,
      values: [input.provider, input.userId],
    });
    task = await insertTask(db, input, tag[0]!.last_vtime);
  } else {
    const max = options.maxActiveTasks;
    type Locked = { task: TaskRow | undefined } | { replay: SubmitOutcome };
    const locked = await withUserTaskLock<Locked>(db as Pool, input.userId, async (client) => {
      const { rows: tag } = await client.query<{ last_vtime: number }>({
        name: 'easel_take_tag_within_limit',
        text: TAKE_TAG_WITHIN_LIMIT,
        values: [input.provider, input.userId, max],
      });
      if (tag[0]) return { task: await insertTask(client, input, tag[0].last_vtime) };
      // At the limit, a repeat of a submit that was accepted is still answered with its task.
      const replay = input.idempotencyKey === undefined ? undefined : await findByKey(client, input);
      if (replay) return { replay };
      throw tooManyActiveTasks(max);
    });
    if ('replay' in locked) return locked.replay;
    task = locked.task;
  }
  if (task) {
    hints.taskReady(task.provider);
    hints.taskEvents();
    return { kind: 'created', task };
  }
  // Lost a race with a concurrent submit under the same key: the winner's row is committed now.
  const winner = await findByKey(db, input);
  if (!winner) throw new Error('idempotent submit found neither a new nor an existing task');
  return winner;
}

async function findByKey(db: Queryable, input: NewTask): Promise<SubmitOutcome | undefined> {
  const { rows } = await db.query<TaskRow>(FIND_BY_KEY, [input.userId, input.idempotencyKey]);
  const task = rows[0];
  if (!task) return undefined;
  return task.request_hash === (input.requestHash ?? null)
    ? { kind: 'replayed', task }
    : { kind: 'key_conflict', task };
}

async function insertTask(db: Queryable, input: NewTask, vtime: number): Promise<TaskRow | undefined> {
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
      vtime,
      input.maxAttempts,
      input.idempotencyKey ?? null,
      input.requestHash ?? null,
      input.inputImage ?? null,
      input.route ?? null,
    ],
  });
  return rows[0];
}
