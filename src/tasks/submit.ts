import { uuidv7 } from 'uuidv7';
import type { Pool, Queryable } from '../db/pool.js';
import { inTransaction, Rollback } from '../db/transaction.js';
import type { HoldPlan } from '../billing/estimate.js';
import { insufficientCredits, recordHold, reserveCredits } from '../billing/holds.js';
import { TaskEventType, type TaskParams } from '../domain/task.js';
import type { StoredInputImage } from '../inputs/uploads.js';
import type { TaskKind } from '../providers/types.js';
import type { TaskRoute } from '../routing/task-route.js';
import type { Hints } from '../db/notifier.js';
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
 * A priced task is the exception (see submitPricedTask): its credit hold, tag and insert share
 * one transaction, because the refusal for credits can only be decided under the lock of the
 * user's account row, and that lock already serialises the user's priced submits through the
 * commit, so taking the tag inside costs them nothing more. The tag is then durable (no
 * synchronous_commit off: it would apply to the money too).
 */
const TAKE_TAG = `
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
SELECT $1, $2, coalesce((SELECT vclock FROM provider_clocks WHERE provider = $1), 0) + 1 FROM relaxed
ON CONFLICT (provider, user_id) DO UPDATE SET last_vtime = greatest(uc.last_vtime + 1, EXCLUDED.last_vtime)
RETURNING last_vtime`;

/** TAKE_TAG inside a priced submit's transaction: committed with it, at full durability. */
const TAKE_TAG_IN_TRANSACTION = `
INSERT INTO user_clocks AS uc (provider, user_id, last_vtime)
SELECT $1, $2, coalesce((SELECT vclock FROM provider_clocks WHERE provider = $1), 0) + 1
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
  if (options.billing) return submitPricedTask(hints, input, options.billing);
  const { rows: tag } = await db.query<{ last_vtime: number }>({
    name: 'easel_take_tag',
    text: TAKE_TAG,
    values: [input.provider, input.userId],
  });
  const { rows } = await db.query<TaskRow>({
    name: 'easel_submit_task',
    text: INSERT_TASK,
    values: insertValues(input, tag[0]!.last_vtime),
  });
  const task = rows[0];
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

function insertValues(input: NewTask, vtime: number): unknown[] {
  return [
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
  ];
}

/**
 * Reserve, tag, insert, hold: one transaction. The reservation comes first, so a refusal has
 * written nothing (the transaction is rolled back before any write). A lost race with a
 * concurrent submit under the same Idempotency-Key rolls back too, and the winner is answered.
 */
async function submitPricedTask(
  hints: Hints,
  input: NewTask,
  billing: NonNullable<SubmitOptions['billing']>,
): Promise<SubmitOutcome> {
  const { pool, plan, minBalanceMicro } = billing;
  const task = await inTransaction(pool, async (client) => {
    if (!(await reserveCredits(client, input.userId, plan, minBalanceMicro))) throw new Rollback('refused' as const);
    const { rows: tag } = await client.query<{ last_vtime: number }>({
      name: 'easel_take_tag_in_transaction',
      text: TAKE_TAG_IN_TRANSACTION,
      values: [input.provider, input.userId],
    });
    const { rows } = await client.query<TaskRow>({
      name: 'easel_submit_task',
      text: INSERT_TASK,
      values: insertValues(input, tag[0]!.last_vtime),
    });
    if (!rows[0]) throw new Rollback('lost_race' as const);
    await recordHold(client, {
      taskId: rows[0].id,
      userId: input.userId,
      actorId: input.userId,
      plan,
      reason: `estimate for ${input.provider}/${input.model}`,
    });
    return rows[0];
  }).catch((error: unknown) => {
    if (error instanceof Rollback) return error.value as 'refused' | 'lost_race';
    throw error;
  });
  if (task === 'refused') throw await insufficientCredits(pool, input.userId, plan, minBalanceMicro);
  if (task !== 'lost_race') {
    hints.taskReady(task.provider);
    hints.taskEvents();
    return { kind: 'created', task };
  }
  const winner = await findByKey(pool, input);
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
