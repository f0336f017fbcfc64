import pg from 'pg';
import type { Logger } from 'pino';
import { Channels } from './listener.js';
import { CONNECTION_SETTINGS } from './pool.js';

/**
 * Sends NOTIFY hints after the data they describe has committed, from one connection of its own.
 *
 * Why not NOTIFY inside the data transaction: PostgreSQL serialises every committing
 * transaction that has a pending NOTIFY on one database-wide lock held through the commit's
 * fsync, which caps such commits at one per disk flush (~300/s here). Sent from a connection
 * with `synchronous_commit = off`, a NOTIFY holds that lock for microseconds, and hints queued
 * in the same tick go out in one statement. A hint lost in a crash costs only latency: every
 * listener also polls, and re-reads rows rather than trusting payloads.
 */
/** Wake-up hints sent after a write commits. Taken as a capability, so tests can pass their own. */
export interface Hints {
  taskReady(provider: string): void;
  taskEvents(): void;
  taskCancel(taskId: string): void;
}

/** For callers that need no one woken (tests of the SQL alone, one-off scripts). */
export const NO_HINTS: Hints = { taskReady: () => {}, taskEvents: () => {}, taskCancel: () => {} };

export class Notifier implements Hints {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly pending = new Map<string, { channel: string; payload: string }>();
  private scheduled = false;
  private sending: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly log: Logger,
  ) {}

  /** A task of `provider` may be claimable (new, retried, or a slot freed up). */
  taskReady(provider: string): void {
    this.queue(Channels.taskReady, provider);
  }

  /** New rows in task_events. */
  taskEvents(): void {
    this.queue(Channels.taskEvents, '');
  }

  /** A running task should stop. */
  taskCancel(taskId: string): void {
    this.queue(Channels.taskCancel, taskId);
  }

  private queue(channel: string, payload: string): void {
    if (this.closed) return;
    this.pending.set(`${channel}\u0000${payload}`, { channel, payload });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  /** One batch at a time on the one connection; hints queued meanwhile ride the next batch. */
  private flush(): Promise<void> {
    this.sending = this.sending.then(() => this.send());
    return this.sending;
  }

  private async send(): Promise<void> {
    this.scheduled = false;
    const batch = [...this.pending.values()];
    this.pending.clear();
    if (batch.length === 0) return;
    const calls = batch.map((_, i) => `pg_notify($${2 * i + 1}, $${2 * i + 2})`).join(', ');
    try {
      const client = await this.connect();
      await client.query(
        `SELECT ${calls}`,
        batch.flatMap((hint) => [hint.channel, hint.payload]),
      );
    } catch (error) {
      this.log.debug({ err: error }, 'could not send NOTIFY hints; pollers will catch up');
      this.client?.end().catch(() => undefined);
      this.client = undefined;
    }
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.connectionString,
        options: '-c synchronous_commit=off',
        ...CONNECTION_SETTINGS,
      });
      client.on('error', () => {
        if (this.client === client) this.client = undefined;
      });
      await client.connect();
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}
