import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { CONNECTION_SETTINGS } from './pool.js';

/**
 * One dedicated connection that only LISTENs (never opens a transaction, never comes from the
 * pool, so a stuck listener cannot hold back the server's notification queue). It reconnects
 * with capped backoff and emits `reconnected`, because notifications sent while it was away are
 * gone: whoever relies on it must re-read the rows then. NOTIFY is a hint; the row is the truth.
 */
export class Listener extends EventEmitter<{
  notification: [channel: string, payload: string];
  reconnected: [];
}> {
  private client: pg.Client | undefined;
  private reconnecting = false;
  private closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly channels: string[],
    private readonly log: Logger,
  ) {
    super();
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, ...CONNECTION_SETTINGS });
    client.on('notification', (message) => this.emit('notification', message.channel, message.payload ?? ''));
    const lost = (error?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => undefined);
      if (!this.closed) {
        this.log.warn({ err: error }, 'notification listener lost its connection');
        void this.reconnect();
      }
    };
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
  }

  /** Retry with doubling delays up to 30 s until connected again (or closed). */
  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 30_000)) {
        await sleep(delay, undefined, { ref: false });
        if (this.closed) return;
        try {
          await this.connect();
          this.log.info('notification listener reconnected');
          this.emit('reconnected');
          return;
        } catch (error) {
          this.log.warn(
            { err: error, retryInMs: Math.min(delay * 2, 30_000) },
            'notification listener reconnect failed',
          );
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

/** Channel names, one place. Payloads are small hints, never the data itself. */
export const Channels = {
  /** A task may be claimable: payload is the provider. */
  taskReady: 'easel_task_ready',
  /** New rows in task_events. */
  taskEvents: 'easel_task_events',
  /** A running task should stop: payload is the task id. */
  taskCancel: 'easel_task_cancel',
} as const;
