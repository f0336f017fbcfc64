import type { Logger } from 'pino';
import { Channels, type Listener } from '../db/listener.js';
import type { Pool } from '../db/pool.js';
import { compareCursors, type EventCursor } from './cursor.js';
import { hasUnsettledEvents, latestCursor, readEvents, type EventScope, type TaskEvent } from './event-log.js';

export interface Subscriber extends EventScope {
  deliver(event: TaskEvent): void;
}

const BATCH = 500;

/**
 * One per API process: follows the task_events log (woken by NOTIFY, with a slow poll as the
 * safety net) and hands each event to the subscribers it concerns. Because the log is read in
 * settled order from a cursor, a lost NOTIFY only delays an event; it never loses one.
 */
export class EventHub {
  private cursor: EventCursor = { txId: '0', id: 0 };
  private readonly subscribers = new Set<Subscriber>();
  private reading = false;
  private readAgain = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** With no one subscribed the hub stops reading; the cursor then lags and must skip ahead. */
  private cursorStale = true;
  private skipping: Promise<void> | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly listener: Listener,
    private readonly log: Logger,
    private readonly pollIntervalMs = 500,
  ) {}

  start(): void {
    this.listener.on('notification', this.onNotification);
    this.listener.on('reconnected', this.catchUp);
    this.schedulePoll();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.pollTimer);
    this.listener.off('notification', this.onNotification);
    this.listener.off('reconnected', this.catchUp);
    this.subscribers.clear();
  }

  /**
   * Start delivering to `subscriber`. Returns the position it joins at: every event after it
   * will be delivered, every event up to it already has been, so a replay up to this position
   * followed by live delivery has no gap and no repeat.
   */
  async subscribe(subscriber: Subscriber): Promise<{ joinedAt: EventCursor; unsubscribe: () => void }> {
    while (this.cursorStale && this.subscribers.size === 0) {
      this.skipping ??= this.skipToLatest().finally(() => (this.skipping = undefined));
      await this.skipping;
    }
    this.subscribers.add(subscriber);
    return {
      joinedAt: this.cursor,
      unsubscribe: () => {
        this.subscribers.delete(subscriber);
        if (this.subscribers.size === 0) this.cursorStale = true;
      },
    };
  }

  /** Nobody needed the events read while no one listened: jump to the newest settled one. */
  private async skipToLatest(): Promise<void> {
    while (this.reading) await new Promise((resolve) => setTimeout(resolve, 1));
    this.cursor = await latestCursor(this.pool);
    this.cursorStale = false;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private readonly onNotification = (channel: string): void => {
    if (channel === Channels.taskEvents && this.subscribers.size > 0) this.catchUp();
  };

  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => {
      if (this.subscribers.size > 0) this.catchUp();
      this.schedulePoll();
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  /** Read everything settled since the cursor; concurrent calls fold into one more pass. */
  readonly catchUp = (): void => {
    if (this.cursorStale) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    void this.readAll()
      .catch((error: unknown) => this.log.warn({ err: error }, 'reading task events failed; will retry'))
      .finally(() => {
        this.reading = false;
        if (this.readAgain && !this.closed) {
          this.readAgain = false;
          this.catchUp();
        }
      });
  };

  private async readAll(): Promise<void> {
    for (;;) {
      const events = await readEvents(this.pool, {}, this.cursor, { limit: BATCH });
      for (const event of events) {
        if (compareCursors(event.cursor, this.cursor) <= 0) continue;
        this.cursor = event.cursor;
        this.dispatch(event);
      }
      if (this.closed) return;
      if (events.length < BATCH) {
        if (await hasUnsettledEvents(this.pool, this.cursor)) this.retrySoon();
        return;
      }
    }
  }

  private retrySoon(): void {
    setTimeout(this.catchUp, 20).unref();
  }

  private dispatch(event: TaskEvent): void {
    for (const subscriber of this.subscribers) {
      if (subscriber.userId !== undefined && subscriber.userId !== event.userId) continue;
      if (subscriber.taskId !== undefined && subscriber.taskId !== event.taskId) continue;
      try {
        subscriber.deliver(event);
      } catch (error) {
        this.log.warn({ err: error }, 'event subscriber threw');
      }
    }
  }
}
