import type { Queryable } from '../db/pool.js';
import type { TaskStatus } from '../domain/task.js';
import type { TaskImageRow, TaskRow } from './rows.js';

/**
 * Whose tasks a lookup by id may find: a user id (their own only), or null for any owner, which
 * only an admin acting on one task by id gets (src/api/task-owner.ts). Lists never take null.
 */
export type TaskOwner = string | null;

export async function findTask(db: Queryable, owner: TaskOwner, taskId: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>({
    name: 'easel_find_task',
    text: 'SELECT * FROM tasks WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)',
    values: [taskId, owner],
  });
  return rows[0];
}

export async function findImages(db: Queryable, taskIds: string[]): Promise<Map<string, TaskImageRow[]>> {
  const byTask = new Map<string, TaskImageRow[]>();
  if (taskIds.length === 0) return byTask;
  const { rows } = await db.query<TaskImageRow>({
    name: 'easel_find_images',
    text: 'SELECT * FROM task_images WHERE task_id = ANY($1::uuid[]) ORDER BY task_id, index',
    values: [taskIds],
  });
  for (const row of rows) {
    const list = byTask.get(row.task_id) ?? [];
    list.push(row);
    byTask.set(row.task_id, list);
  }
  return byTask;
}

export async function findImage(
  db: Queryable,
  owner: TaskOwner,
  taskId: string,
  index: number,
): Promise<TaskImageRow | undefined> {
  const { rows } = await db.query<TaskImageRow>(
    `SELECT i.* FROM task_images i JOIN tasks t ON t.id = i.task_id
     WHERE i.task_id = $1 AND i.index = $2 AND ($3::uuid IS NULL OR t.user_id = $3)`,
    [taskId, index, owner],
  );
  return rows[0];
}

export interface TaskFilter {
  status?: TaskStatus | undefined;
  provider?: string | undefined;
  /** Return tasks older than this id (ids are UUIDv7, so id order is creation order). */
  before?: string | undefined;
  limit: number;
}

/**
 * An admin's filter: any user's tasks (or one user's), also by error code and creation time.
 * Times are id bounds (see uuidBoundAt): a UUIDv7 carries its creation millisecond.
 */
export interface AnyTaskFilter extends TaskFilter {
  userId?: string | undefined;
  errorCode?: string | undefined;
  /** Only ids at or above this bound (created at or after a time). */
  idFrom?: string | undefined;
  /** Only ids below this bound (created before a time). */
  idBelow?: string | undefined;
  /** Lock the rows read: `wait` behind other writers, or `skip` rows another transaction holds. */
  lock?: 'wait' | 'skip' | undefined;
}

/**
 * The statement for one filter shape, with only the conditions it needs, so PostgreSQL can use
 * the index made for it (migrations 0003 for one user, 0013 across users) as an ordered range
 * and stop after `limit` rows.
 *
 * It is deliberately not a named (prepared) statement: after five runs PostgreSQL may switch a
 * prepared statement to a generic plan, which cannot tell a rare status from a common one and
 * walks the whole history backwards, filtering rows. Planned with its values each time (about
 * 0.1 ms), a rare filter gets its index.
 */
export function anyTasksStatement(filter: AnyTaskFilter): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const conditions: string[] = [];
  const add = (sql: string, value: unknown) => {
    values.push(value);
    conditions.push(`${sql} $${values.length}`);
  };
  if (filter.userId !== undefined) add('user_id =', filter.userId);
  if (filter.status !== undefined) add('status =', filter.status);
  if (filter.provider !== undefined) add('provider =', filter.provider);
  if (filter.before !== undefined) add('id <', filter.before);
  if (filter.idBelow !== undefined) add('id <', filter.idBelow);
  if (filter.idFrom !== undefined) add('id >=', filter.idFrom);
  if (filter.errorCode !== undefined) add("error->>'code' =", filter.errorCode);
  values.push(filter.limit);
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')} ` : '';
  const lock = filter.lock === 'skip' ? ' FOR UPDATE SKIP LOCKED' : filter.lock === 'wait' ? ' FOR UPDATE' : '';
  return { text: `SELECT * FROM tasks ${where}ORDER BY id DESC LIMIT $${values.length}${lock}`, values };
}

/** One user's list: the same statement with the owner first. */
export function listTasksStatement(userId: string, filter: TaskFilter): { text: string; values: unknown[] } {
  return anyTasksStatement({ ...filter, userId });
}

/** Newest first, keyset-paginated on id: stable under inserts, cheap at any depth. */
export async function listTasks(db: Queryable, userId: string, filter: TaskFilter): Promise<TaskRow[]> {
  const { rows } = await db.query<TaskRow>(listTasksStatement(userId, filter));
  return rows;
}

/**
 * One page of tasks: `limit` rows, the images of those that succeeded, and the cursor of the
 * next page (one more row is read to know whether there is one).
 */
export async function listTaskPage(
  db: Queryable,
  filter: AnyTaskFilter,
): Promise<{ tasks: TaskRow[]; images: Map<string, TaskImageRow[]>; nextCursor: string | null }> {
  const { rows } = await db.query<TaskRow>(anyTasksStatement({ ...filter, limit: filter.limit + 1 }));
  const tasks = rows.slice(0, filter.limit);
  const images = await findImages(
    db,
    tasks.filter((task) => task.status === 'succeeded').map((task) => task.id),
  );
  return { tasks, images, nextCursor: rows.length > filter.limit ? (tasks.at(-1)?.id ?? null) : null };
}

/**
 * The smallest UUID of any id made at `time` or later, to the millisecond: a UUIDv7 starts with
 * its creation time in milliseconds (the API process's clock at submit), so "created at or after
 * T" is `id >= uuidBoundAt(T)` and "created before T" is `id < uuidBoundAt(T)`, both id ranges.
 */
export function uuidBoundAt(time: Date): string {
  const hex = Math.max(0, Math.floor(time.getTime())).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}
