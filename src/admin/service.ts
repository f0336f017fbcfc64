import type { Hints } from '../db/notifier.js';
import type { Pool } from '../db/pool.js';
import type { Storage } from '../storage/storage.js';
import { clearQueue } from '../tasks/clear-queue.js';
import {
  purgeDeadLetters,
  retryDeadLetters,
  type DeadLetterOutcome,
  type DeadLetterSelection,
  type PurgeOutcome,
} from '../tasks/dead-letters.js';
import { listTaskPage, type AnyTaskFilter } from '../tasks/queries.js';
import { countsPerDay, queueCounts, type DayCounts, type QueueCounts } from '../tasks/queue-stats.js';
import { bareView, type TaskView } from '../tasks/service.js';
import { listUsersWithTaskCounts, type UserWithTaskCounts } from './user-task-counts.js';

export interface QueueStats {
  queues: QueueCounts[];
  totals: Omit<QueueCounts, 'provider' | 'priority'>;
  days: DayCounts[];
}

export interface UserOverview extends UserWithTaskCounts {
  /** Credits on the user's account (0 when never credited). */
  balance: number;
}

/**
 * What an admin does across every user: views over all tasks, dead letters, queue statistics,
 * clearing the queue, users with their task counts. The routes check the admin role; nothing
 * here looks at who asks.
 */
export class AdminService {
  constructor(
    private readonly pool: Pool,
    private readonly storage: Storage,
    private readonly hints: Hints,
    /** Each user's balance in credits (src/billing/accounts.ts). */
    private readonly balancesOf: (userIds: string[]) => Promise<Map<string, number>>,
  ) {}

  async listTasks(
    filter: AnyTaskFilter,
  ): Promise<{ views: (TaskView & { userId: string })[]; nextCursor: string | null }> {
    const page = await listTaskPage(this.pool, filter);
    return {
      views: page.tasks.map((task) => ({
        ...bareView(task),
        images: page.images.get(task.id) ?? [],
        userId: task.user_id,
      })),
      nextCursor: page.nextCursor,
    };
  }

  retryDeadLetters(selection: DeadLetterSelection): Promise<DeadLetterOutcome> {
    return retryDeadLetters(this.pool, this.hints, selection);
  }

  purgeDeadLetters(
    selection: DeadLetterSelection,
    onStorageError: (key: string, error: unknown) => void,
  ): Promise<PurgeOutcome> {
    return purgeDeadLetters(this.pool, this.storage, selection, onStorageError);
  }

  clearQueue(provider?: string): Promise<number> {
    return clearQueue(this.pool, this.hints, provider);
  }

  async stats(days: number): Promise<QueueStats> {
    const [queues, perDay] = await Promise.all([queueCounts(this.pool), countsPerDay(this.pool, days)]);
    const totals = { queued: 0, running: 0, retrying: 0, dead: 0 };
    for (const row of queues) {
      totals.queued += row.queued;
      totals.running += row.running;
      totals.retrying += row.retrying;
      totals.dead += row.dead;
    }
    return { queues, totals, days: perDay };
  }

  async users(page: { after?: string | undefined; limit: number }): Promise<{
    users: UserOverview[];
    nextCursor: string | null;
  }> {
    const { users, nextCursor } = await listUsersWithTaskCounts(this.pool, page);
    const balances = await this.balancesOf(users.map((user) => user.id));
    return { users: users.map((user) => ({ ...user, balance: balances.get(user.id) ?? 0 })), nextCursor };
  }
}
