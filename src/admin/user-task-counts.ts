import type { Queryable } from '../db/pool.js';
import type { TaskStatus } from '../domain/task.js';

export interface UserWithTaskCounts {
  id: string;
  name: string;
  email: string | null;
  role: 'user' | 'admin';
  created_at: Date;
  deleted_at: Date | null;
  tasks: Record<TaskStatus, number>;
}

/**
 * A page of users in id order (deleted ones too, marked), each with their tasks counted by
 * status. The count reads only that user's entries of tasks_by_user_status (user_id, status, id):
 * an index-only scan as long as vacuum keeps the visibility map current.
 */
const USERS_PAGE = `
SELECT u.id, u.name, u.email, u.role, u.created_at, u.deleted_at,
       coalesce(c.queued, 0) AS queued, coalesce(c.running, 0) AS running,
       coalesce(c.succeeded, 0) AS succeeded, coalesce(c.failed, 0) AS failed,
       coalesce(c.canceled, 0) AS canceled
FROM users u
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE t.status = 'queued')::int AS queued,
         count(*) FILTER (WHERE t.status = 'running')::int AS running,
         count(*) FILTER (WHERE t.status = 'succeeded')::int AS succeeded,
         count(*) FILTER (WHERE t.status = 'failed')::int AS failed,
         count(*) FILTER (WHERE t.status = 'canceled')::int AS canceled
  FROM tasks t WHERE t.user_id = u.id
) c ON true
WHERE $1::uuid IS NULL OR u.id > $1::uuid
ORDER BY u.id
LIMIT $2`;

type Row = Omit<UserWithTaskCounts, 'tasks'> & Record<TaskStatus, number>;

export async function listUsersWithTaskCounts(
  db: Queryable,
  page: { after?: string | undefined; limit: number },
): Promise<{ users: UserWithTaskCounts[]; nextCursor: string | null }> {
  const { rows } = await db.query<Row>(USERS_PAGE, [page.after ?? null, page.limit + 1]);
  const users = rows.slice(0, page.limit).map(({ queued, running, succeeded, failed, canceled, ...user }) => ({
    ...user,
    tasks: { queued, running, succeeded, failed, canceled },
  }));
  return { users, nextCursor: rows.length > page.limit ? (users.at(-1)?.id ?? null) : null };
}
