import type { Queryable } from '../db/pool.js';
import type { TaskOwner } from './queries.js';

export interface TaskPreview {
  contentType: string;
  data: Buffer;
  version: number;
}

/**
 * The latest progress preview of a task (migration 0018), or `'no_task'` when the owner has no
 * such task. Only a running task shows one: the row goes when the attempt ends, and the status
 * check covers the moment in between.
 */
export async function findTaskPreview(
  db: Queryable,
  owner: TaskOwner,
  taskId: string,
): Promise<TaskPreview | 'no_task' | undefined> {
  const { rows } = await db.query<{ content_type: string | null; data: Buffer | null; version: number | null }>({
    name: 'easel_find_task_preview',
    text: `SELECT p.content_type, p.data, p.version
           FROM tasks t LEFT JOIN task_previews p ON p.task_id = t.id AND t.status = 'running'
           WHERE t.id = $1 AND ($2::uuid IS NULL OR t.user_id = $2)`,
    values: [taskId, owner],
  });
  const row = rows[0];
  if (!row) return 'no_task';
  if (row.data === null || row.content_type === null || row.version === null) return undefined;
  return { contentType: row.content_type, data: row.data, version: row.version };
}
