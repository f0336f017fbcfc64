import { uuidv7 } from 'uuidv7';
import type { Pool, PoolClient, Queryable } from '../db/pool.js';
import { inTransaction, Rollback } from '../db/transaction.js';
import type { HoldPlan } from '../billing/estimate.js';
import { insufficientCredits, recordHold, reserveCredits } from '../billing/holds.js';
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
 *
 * A submit under a per-user limit or with a price is the exception (submitInTransaction): its
 * tag, credit hold and insert share one transaction, because those refusals can only be decided
 * under the user's task lock or account row. The tag is then durable (no synchronous_commit off:
 * it would apply to the money too).
 */
const TAKE_TAG = `
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
SELECT $1, $2, coalesce((SELECT vclock FROM provider_clocks WHERE provider = $1), 0) + 1 FROM relaxed
ON CONFLICT (provider, user_id) DO UPDATE SET last_vtime = greatest(uc.last_vtime + 1, EXCLUDED.last_vtime)
RETURNING last_vtime`;

/**
 * TAKE_TAG inside the insert's transaction (a submit under EASEL_USER_MAX_ACTIVE_TASKS, or a
 * priced one): committed durably with the task. The user's task lock or account row already
 * makes that user's submits take turns through the commit, so the separate relaxed commit of
 * TAKE_TAG would buy nothing, and a refusal rolls the tag back too: nothing at all is written.
 * `$3` (NULL = no limit): no row when the user already has that many tasks queued or running.
 */
const TAKE_TAG_IN_TRANSACTION = `
WITH active AS (
  SELECT count(*) AS n FROM (SELECT 1 FROM tasks WHERE user_id = $2 AND status IN ${ACTIVE_STATUSES_SQL} LIMIT $3) a
)
INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
SELECT $1, $2, coalesce((SELECT vclock FROM provider_clocks WHERE provider = $1), 0) + 1
FROM active WHERE $3::int IS NULL OR active.n < $3
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
  /**
   * A priced task: the credit hold is placed in the transaction that inserts it, and a balance
   * that cannot cover it is 402 INSUFFICIENT_CREDITS with nothing written.
   */
  billing?: { pool: Pool; plan: HoldPlan; minBalanceMicro: number };
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
  if (options.maxActiveTasks !== undefined || options.billing)
    return submitInTransaction(db as Pool, hints, input, options);
  const { rows: tag } = await db.query<{ last_vtime: number }>({
    name: 'easel_take_tag',
    text: TAKE_TAG,
    values: [input.provider, input.userId],
  });
  const task = await insertTask(db, input, tag[0]!.last_vtime);
  if (task) return created(hints, task);
  // Lost a race with a concurrent submit under the same key: the winner's row is committed now.
  return winnerOfRace(db, input);
}

function created(hints: Hints, task: TaskRow): SubmitOutcome {
  hints.taskReady(task.provider);
  hints.taskEvents();
  return { kind: 'created', task };
}

async function winnerOfRace(db: Queryable, input: NewTask): Promise<SubmitOutcome> {
  const winner = await findByKey(db, input);
  if (!winner) throw new Error('idempotent submit found neither a new nor an existing task');
  return winner;
}

/** How a transaction of submitInTransaction ends without a new task: rolled back, all of it. */
type RolledBack = 'no_credits' | 'lost_race' | { replay: SubmitOutcome };

/**
 * Credits, limit, tag, insert, hold: one transaction, under the user's task lock when there is
 * an active-task limit. Every refusal rolls it all back, so a refused submit writes nothing. At
 * the limit, a repeat of a submit that was accepted is still answered with its task; a lost race
 * with a concurrent submit under the same Idempotency-Key answers the winner.
 *
 * Row locks are taken in the order the retry of a dead letter takes them too (the user's credit
 * account, then their fair-queuing clock), so a submit and a retry of one user never deadlock.
 */
async function submitInTransaction(
  pool: Pool,
  hints: Hints,
  input: NewTask,
  options: SubmitOptions,
): Promise<SubmitOutcome> {
  const { maxActiveTasks, billing } = options;
  const work = async (client: PoolClient): Promise<TaskRow> => {
    if (billing && !(await reserveCredits(client, input.userId, billing.plan, billing.minBalanceMicro))) {
      throw new Rollback<RolledBack>('no_credits');
    }
    const { rows: tag } = await client.query<{ last_vtime: number }>({
      name: 'easel_take_tag_in_transaction',
      text: TAKE_TAG_IN_TRANSACTION,
      values: [input.provider, input.userId, maxActiveTasks ?? null],
    });
    if (!tag[0]) {
      const replay = input.idempotencyKey === undefined ? undefined : await findByKey(client, input);
      if (replay) throw new Rollback<RolledBack>({ replay });
      throw tooManyActiveTasks(maxActiveTasks!);
    }
    const task = await insertTask(client, input, tag[0].last_vtime);
    if (!task) throw new Rollback<RolledBack>('lost_race');
    if (billing) {
      await recordHold(client, {
        taskId: task.id,
        userId: input.userId,
        actorId: input.userId,
        plan: billing.plan,
        reason: `estimate for ${input.provider}/${input.model}`,
      });
    }
    return task;
  };
  try {
    const task =
      maxActiveTasks === undefined ? await inTransaction(pool, work) : await withUserTaskLock(pool, input.userId, work);
    return created(hints, task);
  } catch (error) {
    if (!(error instanceof Rollback)) throw error;
    const why = error.value as RolledBack;
    if (why === 'no_credits') {
      throw await insufficientCredits(pool, input.userId, billing!.plan, billing!.minBalanceMicro);
    }
    if (why === 'lost_race') return winnerOfRace(pool, input);
    return why.replay;
  }
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
