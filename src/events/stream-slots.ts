export interface StreamLimits {
  /** Open streams one user may hold on this process. */
  perUser: number;
  /** Open streams on this process, all users together. */
  total: number;
}

export type SlotRefusal = 'user' | 'process';

/**
 * Counts the open SSE streams of one API process, per user and in total. Counting is in memory,
 * so limits hold per process; a deployment of N API processes admits up to N times as many.
 * Invariant: every granted slot is released exactly once (release is idempotent).
 */
export class StreamSlots {
  private readonly perUser = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: StreamLimits) {}

  /** A release function, or why the stream is refused. Synchronous, so check and count are one step. */
  tryAcquire(userId: string): { release: () => void } | { refused: SlotRefusal } {
    const mine = this.perUser.get(userId) ?? 0;
    if (mine >= this.limits.perUser) return { refused: 'user' };
    if (this.total >= this.limits.total) return { refused: 'process' };
    this.perUser.set(userId, mine + 1);
    this.total++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perUser.get(userId) ?? 1) - 1;
        if (left > 0) this.perUser.set(userId, left);
        else this.perUser.delete(userId);
      },
    };
  }

  get open(): number {
    return this.total;
  }
}
