import type { Queryable } from '../db/pool.js';
import { ApiError } from '../domain/errors.js';

/** Counting stops here: past the bound the exact number does not matter, and the count stays cheap. */
const COUNT_QUEUED_UP_TO = `
SELECT count(*)::int AS queued FROM (SELECT 1 FROM tasks WHERE status = 'queued' LIMIT $1) q`;

/**
 * A global bound on queued tasks, so a flood of submits cannot grow the queue without limit.
 *
 * Approximate by design, to keep submits to their few statements: each API process counts the
 * queued tasks (from the partial index `tasks_queued`, at most `max` rows) at most once per
 * `refreshMs`, and adds the submits it accepted since. Other processes' submits since the last
 * count are not seen, so with N API processes the queue can overshoot by what they accept in
 * one refresh interval.
 */
export class QueueBound {
  private counted: { at: number; queued: number } | undefined;
  private acceptedSinceCount = 0;
  private counting: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly max: number,
    private readonly refreshMs = 1000,
  ) {}

  /** Throws 503 QUEUE_FULL at the bound. Call before writing anything. */
  async admit(): Promise<void> {
    const queued = await this.estimate();
    if (queued >= this.max) {
      const retryAfterSeconds = Math.max(1, Math.ceil(this.refreshMs / 1000));
      throw new ApiError('QUEUE_FULL', `${this.max} tasks are queued already; try again in a moment`, {
        retry_after_seconds: retryAfterSeconds,
      });
    }
  }

  /** Count a submit this process accepted, until the next count sees it. */
  accepted(): void {
    this.acceptedSinceCount++;
  }

  private async estimate(): Promise<number> {
    const stale = !this.counted || Date.now() - this.counted.at >= this.refreshMs;
    if (stale) {
      this.counting ??= this.count().finally(() => (this.counting = undefined));
      await this.counting;
    }
    return this.counted!.queued + this.acceptedSinceCount;
  }

  private async count(): Promise<void> {
    const { rows } = await this.db.query<{ queued: number }>({
      name: 'easel_count_queued',
      text: COUNT_QUEUED_UP_TO,
      values: [this.max],
    });
    this.counted = { at: Date.now(), queued: rows[0]!.queued };
    this.acceptedSinceCount = 0;
  }
}
