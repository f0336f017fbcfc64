import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from 'pino';

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
  private closed = false;
  private retryDelayMs = 100;

  constructor(
    private readonly connectionString: string,
    private readonly channels: string[],
    private readonly log: Logger,
  ) {
    super();
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (message) => this.emit('notification', message.channel, message.payload ?? ''));
    client.on('error', (error) => {
      this.log.warn({ err: error }, 'notification listener lost its connection');
      this.scheduleReconnect(client);
    });
    client.on('end', () => this.scheduleReconnect(client));
    await client.connect();
    for (const channel of this.channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    this.client = client;
    this.retryDelayMs = 100;
  }

  private scheduleReconnect(dead: pg.Client): void {
    if (this.closed || this.client !== dead) return;
    this.client = undefined;
    dead.end().catch(() => undefined);
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 30_000);
    setTimeout(() => {
      if (this.closed) return;
      this.connect().then(
        () => {
          this.log.info('notification listener reconnected');
          this.emit('reconnected');
        },
        (error: unknown) => {
          this.log.warn({ err: error, retryInMs: this.retryDelayMs }, 'notification listener reconnect failed');
          const placeholder = new pg.Client();
          this.client = placeholder;
          this.scheduleReconnect(placeholder);
        },
      );
    }, delay).unref();
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
