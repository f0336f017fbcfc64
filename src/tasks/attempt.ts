import type { Queryable } from '../db/pool.js';
import { TaskEventType, type TaskError } from '../domain/task.js';
import type { Hints } from '../db/notifier.js';
import { insertEventsSql, sqlLiteral } from './events.js';
import type { Lease, TaskImageRow } from './rows.js';

/**
 * Writes made by the worker that holds an attempt. Every statement matches
 * `lease_token = $2 AND status = 'running'`: the token changes on every claim, so a late write
 * from a worker presumed dead matches no row and changes nothing. Each returns whether it won.
 */

const FENCE = `id = $1 AND lease_token = $2 AND status = 'running'`;

/**
 * Run one fenced statement; when it won, send the hints: new events always, and a free slot
 * when the attempt ended (`freesSlot`).
 */
async function fencedWrite(
  db: Queryable,
  hints: Hints,
  lease: Lease,
  statement: { name: string; text: string; values: unknown[]; freesSlot: boolean },
): Promise<boolean> {
  const { rowCount } = await db.query({ name: statement.name, text: statement.text, values: statement.values });
  const won = (rowCount ?? 0) > 0;
  if (won) {
    if (statement.freesSlot) hints.taskReady(lease.provider);
    hints.taskEvents();
  }
  return won;
}

/** Progress events say which preview is current (null: none yet), for `preview_url`. */
const PREVIEW_VERSION = `jsonb_build_object('preview_version', t.preview_version)`;

const REPORT_PROGRESS = `
WITH t AS (
  UPDATE tasks SET stage = $3, progress = $4, updated_at = now() WHERE ${FENCE} RETURNING *
), event AS (${insertEventsSql('t', sqlLiteral(TaskEventType.progress), PREVIEW_VERSION)})
SELECT 1 FROM t`;

/**
 * Progress with a new preview (migration 0018): the task's preview version goes up and the
 * bytes replace the previous preview in the same fenced statement, so a late write from a
 * superseded attempt stores nothing.
 */
const REPORT_PROGRESS_WITH_PREVIEW = `
WITH t AS (
  UPDATE tasks SET stage = $3, progress = $4, preview_version = COALESCE(preview_version, 0) + 1,
         updated_at = now()
  WHERE ${FENCE} RETURNING *
), preview AS (
  INSERT INTO task_previews (task_id, content_type, data, version)
  SELECT t.id, $5, $6, t.preview_version FROM t
  ON CONFLICT (task_id) DO UPDATE SET content_type = EXCLUDED.content_type, data = EXCLUDED.data,
    version = EXCLUDED.version, updated_at = now()
), event AS (${insertEventsSql('t', sqlLiteral(TaskEventType.progress), PREVIEW_VERSION)})
SELECT 1 FROM t`;

export function reportProgress(
  db: Queryable,
  hints: Hints,
  lease: Lease,
  stage: string,
  progress: number,
  preview?: { contentType: string; data: Buffer },
): Promise<boolean> {
  if (preview) {
    return fencedWrite(db, hints, lease, {
      name: 'easel_progress_preview',
      text: REPORT_PROGRESS_WITH_PREVIEW,
      values: [lease.taskId, lease.token, stage, progress, preview.contentType, preview.data],
      freesSlot: false,
    });
  }
  return fencedWrite(db, hints, lease, {
    name: 'easel_progress',
    text: REPORT_PROGRESS,
    values: [lease.taskId, lease.token, stage, progress],
    freesSlot: false,
  });
}

export async function saveProviderRef(db: Queryable, lease: Lease, ref: string): Promise<boolean> {
  const { rowCount } = await db.query({
    name: 'easel_provider_ref',
    text: `UPDATE tasks SET provider_ref = $3, updated_at = now() WHERE ${FENCE}`,
    values: [lease.taskId, lease.token, ref],
  });
  return (rowCount ?? 0) > 0;
}

/** Which of `keys` are recorded for the task: a write whose answer was lost may still have won. */
export async function recordedImageKeys(db: Queryable, taskId: string, keys: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ storage_key: string }>(
    'SELECT storage_key FROM task_images WHERE task_id = $1 AND storage_key = ANY($2::text[])',
    [taskId, keys],
  );
  return new Set(rows.map((row) => row.storage_key));
}

/** An image already in storage, about to be recorded with its task. */
export type StoredImage = Omit<TaskImageRow, 'task_id' | 'created_at' | 'expired_at'>;

/**
 * Succeed, record the images and settle the task's credit hold (capture the cost at the price
 * frozen on the hold, release the rest: migration 0010) in one statement: all happen, or none.
 * The fence makes a late or repeated success match no row, so nothing is charged twice. With the
 * licence API on, the external charge is recorded in the same statement (sent later, never here).
 */
const SUCCEED = `
WITH t AS (
  UPDATE tasks SET status = 'succeeded', stage = NULL, progress = 100, error = NULL,
                   predict_time = $3, finished_at = now(), updated_at = now()
  WHERE ${FENCE} RETURNING *
), images AS (
  INSERT INTO task_images (task_id, index, storage_key, content_type, bytes, width, height, seed, sha256,
                           thumbnail_bytes, thumbnail_width, thumbnail_height, thumbnail_sha256)
  SELECT t.id, i.index, i.storage_key, i.content_type, i.bytes, i.width, i.height, i.seed, i.sha256,
         i.thumbnail_bytes, i.thumbnail_width, i.thumbnail_height, i.thumbnail_sha256
  FROM t, jsonb_to_recordset($4::jsonb) AS i(index int, storage_key text, content_type text, bytes int,
                                             width int, height int, seed bigint, sha256 text,
                                             thumbnail_bytes int, thumbnail_width int, thumbnail_height int,
                                             thumbnail_sha256 text)
), event AS (
  ${insertEventsSql('t', sqlLiteral(TaskEventType.succeeded), `jsonb_build_object('images', $5::jsonb)`)}
), cost AS (
  SELECT t.id, t.user_id, easel_capture_task_hold(t.id, t.provider, t.model, $3, jsonb_array_length($4::jsonb)) AS micro
  FROM t
), external_charge AS (
  -- $6 (LICENSE_API_ENDPOINT set): what was captured is owed to the licence API too, by the
  -- user's email (none: not billed externally). Workers' settler sends it later (0014).
  INSERT INTO external_charges (task_id, user_id, email, amount)
  SELECT cost.id, cost.user_id, u.email, cost.micro FROM cost JOIN users u ON u.id = cost.user_id
  WHERE $6::boolean AND cost.micro > 0 AND u.email IS NOT NULL
  ON CONFLICT (task_id) DO NOTHING
)
SELECT micro FROM cost`;

export function succeedAttempt(
  db: Queryable,
  hints: Hints,
  lease: Lease,
  result: { predictTimeSeconds: number; images: StoredImage[] },
  /** LICENSE_API_ENDPOINT is set: record the captured cost as an external charge. */
  externalBilling = false,
): Promise<boolean> {
  return fencedWrite(db, hints, lease, {
    name: 'easel_succeed',
    text: SUCCEED,
    values: [
      lease.taskId,
      lease.token,
      result.predictTimeSeconds,
      JSON.stringify(result.images),
      // The event carries the images' public description (no storage key) so live clients
      // need no second request to show the result.
      JSON.stringify(result.images.map(({ storage_key: _key, ...image }) => image)),
      externalBilling,
    ],
    freesSlot: true,
  });
}

/**
 * A running task whose cancel was requested may not go back to the queue (a retry or a shutdown
 * would resurrect it): where RETRY_LATER and RELEASE would queue it, it ends `canceled`.
 */
const QUEUED_UNLESS_CANCELED = `CASE WHEN cancel_requested_at IS NULL THEN 'queued' ELSE 'canceled' END`;
const FINISHED_IF_CANCELED = `CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE now() END`;
/** The event for a row that went through QUEUED_UNLESS_CANCELED. */
const requeuedEventSql = (queuedType: TaskEventType) =>
  `CASE t.status WHEN 'queued' THEN ${sqlLiteral(queuedType)} ELSE ${sqlLiteral(TaskEventType.canceled)} END`;

/**
 * Back to the queue after `delayMs`, keeping the task's fair-queuing tag (it was already due).
 * provider_ref is cleared unless `$6` says the upstream request is still alive, so the next
 * attempt does not "resume" a request that just failed.
 */
const RETRY_LATER = `
WITH t AS (
  UPDATE tasks SET status = ${QUEUED_UNLESS_CANCELED}, finished_at = ${FINISHED_IF_CANCELED},
                   stage = NULL, progress = 0,
                   error = CASE WHEN cancel_requested_at IS NULL THEN $3::jsonb END,
                   provider_ref = CASE WHEN $6::boolean THEN provider_ref END,
                   run_after = now() + make_interval(secs => $4::double precision / 1000),
                   worker_id = NULL, lease_token = NULL, predict_time = $5, updated_at = now()
  WHERE ${FENCE} RETURNING *
), event AS (${insertEventsSql('t', requeuedEventSql(TaskEventType.retrying))})
SELECT 1 FROM t`;

export function retryAttemptLater(
  db: Queryable,
  hints: Hints,
  lease: Lease,
  error: TaskError,
  delayMs: number,
  predictTimeSeconds: number,
  options: { keepProviderRef: boolean },
): Promise<boolean> {
  return fencedWrite(db, hints, lease, {
    name: 'easel_retry_later',
    text: RETRY_LATER,
    values: [lease.taskId, lease.token, error, delayMs, predictTimeSeconds, options.keepProviderRef],
    freesSlot: true,
  });
}

/** Final states an attempt can end in besides success. */
const FINISH = `
WITH t AS (
  UPDATE tasks SET status = $3, stage = NULL, error = $4, predict_time = $5,
                   finished_at = now(), updated_at = now()
  WHERE ${FENCE} RETURNING *
), event AS (${insertEventsSql('t', `'task:' || $3`)})
SELECT 1 FROM t`;

export function failAttempt(
  db: Queryable,
  hints: Hints,
  lease: Lease,
  error: TaskError,
  predictTimeSeconds: number,
): Promise<boolean> {
  return fencedWrite(db, hints, lease, {
    name: 'easel_finish',
    text: FINISH,
    values: [lease.taskId, lease.token, 'failed', error, predictTimeSeconds],
    freesSlot: true,
  });
}

export function cancelAttempt(db: Queryable, hints: Hints, lease: Lease, predictTimeSeconds: number): Promise<boolean> {
  return fencedWrite(db, hints, lease, {
    name: 'easel_finish',
    text: FINISH,
    values: [lease.taskId, lease.token, 'canceled', null, predictTimeSeconds],
    freesSlot: true,
  });
}

/**
 * Hand an unfinished attempt back without counting it, runnable at once. Shutdown does this
 * (`error` undefined: a task does not lose an attempt to a deploy, and the event is
 * `task:queued`), and so does a credential the provider refused or slowed down (`error` says
 * why, the event is `task:retrying`): the task runs again on another credential.
 */
const releaseSql = (eventType: TaskEventType) => `
WITH t AS (
  UPDATE tasks SET status = ${QUEUED_UNLESS_CANCELED}, finished_at = ${FINISHED_IF_CANCELED},
                   attempt = greatest(attempt - 1, 0), stage = NULL, progress = 0,
                   error = CASE WHEN cancel_requested_at IS NULL THEN COALESCE($3::jsonb, error) END,
                   worker_id = NULL, lease_token = NULL, run_after = now(), updated_at = now()
  WHERE ${FENCE} RETURNING *
), event AS (${insertEventsSql('t', requeuedEventSql(eventType))})
SELECT 1 FROM t`;
const RELEASE = releaseSql(TaskEventType.queued);
const RELEASE_FOR_ANOTHER_CREDENTIAL = releaseSql(TaskEventType.retrying);

export function releaseAttempt(db: Queryable, hints: Hints, lease: Lease, error?: TaskError): Promise<boolean> {
  return fencedWrite(db, hints, lease, {
    name: error ? 'easel_release_retrying' : 'easel_release',
    text: error ? RELEASE_FOR_ANOTHER_CREDENTIAL : RELEASE,
    values: [lease.taskId, lease.token, error ?? null],
    freesSlot: true,
  });
}
