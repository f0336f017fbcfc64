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
 * The statement for one filter shape, with only the conditions it needs, so PostgreSQL can use
 * the index made for it (migration 0003) as an ordered range and stop after `limit` rows.
 *
 * It is deliberately not a named (prepared) statement: after five runs PostgreSQL may switch a
 * prepared statement to a generic plan, which cannot tell a rare status from a common one and
 * walks the whole history backwards, filtering rows. Planned with its values each time (about
 * 0.1 ms), a rare filter gets its index.
 */
export function listTasksStatement(userId: string, filter: TaskFilter): { text: string; values: unknown[] } {
  const values: unknown[] = [userId];
  const conditions = ['user_id = $1'];
  const add = (sql: string, value: unknown) => {
    values.push(value);
    conditions.push(`${sql} $${values.length}`);
  };
  if (filter.status !== undefined) add('status =', filter.status);
  if (filter.provider !== undefined) add('provider =', filter.provider);
  if (filter.before !== undefined) add('id <', filter.before);
  values.push(filter.limit);
  return {
    text: `SELECT * FROM tasks WHERE ${conditions.join(' AND ')} ORDER BY id DESC LIMIT $${values.length}`,
    values,
  };
}

/** Newest first, keyset-paginated on id: stable under inserts, cheap at any depth. */
export async function listTasks(db: Queryable, userId: string, filter: TaskFilter): Promise<TaskRow[]> {
  const { rows } = await db.query<TaskRow>(listTasksStatement(userId, filter));
  return rows;
}
