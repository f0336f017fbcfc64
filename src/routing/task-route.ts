import type { Hints } from '../db/notifier.js';
import type { Queryable } from '../db/pool.js';
import { TaskEventType, type TaskError, type TaskParams } from '../domain/task.js';
import type { Lease, TaskRow } from '../tasks/rows.js';
import { insertEventsSql, sqlLiteral } from '../tasks/events.js';
import type { ModelRoute } from './routes-file.js';

/** A route target as one task will run it: its request already resolved and checked at submit. */
export interface TaskRouteTarget {
  provider: string;
  model: string;
  params: TaskParams;
  provider_options: Record<string, unknown>;
}

/** `tasks.route` (migration 0008): a routed task's plan and history. */
export interface TaskRoute {
  name: string;
  /** Index in `targets` of the target the task is on now. */
  index: number;
  /** Wait on a target with no usable credential before moving on. */
  fallback_after_ms: number;
  /** When the task arrived at its current target; set by the database. */
  since?: string;
  targets: TaskRouteTarget[];
  /** Each target the task left, with the error that made it leave. */
  fallbacks: Array<{ provider: string; model: string; error: TaskError }>;
}

export function newTaskRoute(route: ModelRoute, targets: TaskRouteTarget[]): TaskRoute {
  return {
    name: route.name,
    index: 0,
    fallback_after_ms: route.fallbackAfterMs,
    targets: targets.map(({ provider, model, params, provider_options }) => ({
      provider,
      model,
      params,
      provider_options,
    })),
    fallbacks: [],
  };
}

export const hasNextTarget = (task: Pick<TaskRow, 'route'>): boolean =>
  task.route !== null && task.route.index + 1 < task.route.targets.length;

/**
 * The SET list that moves a task to its route's next target, queued and runnable at once with
 * a fresh attempt budget: the old target's failures say nothing about the new one. Its fair-
 * queuing tag is kept: the task has waited already. `$err` is the error that made it move.
 */
const moveToNextTarget = (err: string) => `
  provider = t.route->'targets'->((t.route->>'index')::int + 1)->>'provider',
  model = t.route->'targets'->((t.route->>'index')::int + 1)->>'model',
  params = t.route->'targets'->((t.route->>'index')::int + 1)->'params',
  provider_options = t.route->'targets'->((t.route->>'index')::int + 1)->'provider_options',
  route = t.route || jsonb_build_object(
    'index', (t.route->>'index')::int + 1,
    'since', now(),
    'fallbacks', (t.route->'fallbacks') || jsonb_build_array(
      jsonb_build_object('provider', t.provider, 'model', t.model, 'error', ${err}))),
  status = CASE WHEN t.cancel_requested_at IS NULL THEN 'queued' ELSE 'canceled' END,
  finished_at = CASE WHEN t.cancel_requested_at IS NULL THEN NULL ELSE now() END,
  error = CASE WHEN t.cancel_requested_at IS NULL THEN ${err} END,
  attempt = 0, provider_ref = NULL, stage = NULL, progress = 0, worker_id = NULL, lease_token = NULL,
  run_after = now(), updated_at = now()`;

const HAS_NEXT = `(t.route->>'index')::int + 1 < jsonb_array_length(t.route->'targets')`;
const EVENT = sqlLiteral(TaskEventType.retrying);

const FALL_THROUGH = `
WITH moved AS (
  UPDATE tasks t SET ${moveToNextTarget('$3::jsonb')}
  WHERE t.id = $1 AND t.lease_token = $2 AND t.status = 'running' AND t.route IS NOT NULL AND ${HAS_NEXT}
  RETURNING t.*
), event AS (${insertEventsSql('moved', EVENT)})
SELECT provider FROM moved`;

/**
 * Fenced like every attempt outcome: the attempt that failed for good on its target moves the
 * task on. False when the lease is gone or there is no next target (the caller then fails it).
 */
export async function fallThrough(db: Queryable, hints: Hints, lease: Lease, error: TaskError): Promise<boolean> {
  const { rows } = await db.query<{ provider: string }>({
    name: 'easel_fall_through',
    text: FALL_THROUGH,
    values: [lease.taskId, lease.token, error],
  });
  if (!rows[0]) return false;
  hints.taskReady(lease.provider);
  hints.taskReady(rows[0].provider);
  hints.taskEvents();
  return true;
}

/**
 * Queued routed tasks that have waited longer than their route allows on a target whose
 * credential pool has no usable credential now move on. `$1`/`$2` pair each provider with its
 * pool; providers without a pool never strand a task this way.
 */
const MOVE_STRANDED = `
WITH pools AS (
  SELECT * FROM unnest($1::text[], $2::text[]) AS p(provider, pool)
), stranded AS (
  SELECT t.id FROM tasks t JOIN pools ON pools.provider = t.provider
  WHERE t.status = 'queued' AND t.route IS NOT NULL AND ${HAS_NEXT}
    AND (t.route->>'since')::timestamptz
        < now() - make_interval(secs => (t.route->>'fallback_after_ms')::double precision / 1000)
    AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.provider = pools.pool AND easel_credential_state(c) = 'active')
  LIMIT 500
  FOR UPDATE OF t SKIP LOCKED
), moved AS (
  UPDATE tasks t SET ${moveToNextTarget(`jsonb_build_object('code', 'NO_USABLE_CREDENTIAL', 'message',
      'no credential of ' || t.provider || ' could take the task within the route''s wait')`)}
  FROM stranded WHERE t.id = stranded.id
  RETURNING t.*
), event AS (${insertEventsSql('moved', EVENT)})
SELECT id, provider FROM moved`;

export async function moveStrandedTasks(
  db: Queryable,
  hints: Hints,
  pools: Array<{ provider: string; pool: string }>,
): Promise<number> {
  if (pools.length === 0) return 0;
  const { rows } = await db.query<{ id: string; provider: string }>({
    name: 'easel_move_stranded',
    text: MOVE_STRANDED,
    values: [pools.map((entry) => entry.provider), pools.map((entry) => entry.pool)],
  });
  for (const provider of new Set(rows.map((row) => row.provider))) hints.taskReady(provider);
  if (rows.length > 0) hints.taskEvents();
  return rows.length;
}
