import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

/** The server refused the worker token (revoked or unknown): nothing this process does can succeed. */
export class WorkerTokenRefused extends Error {
  override name = 'WorkerTokenRefused';
  constructor(readonly code: string) {
    super(`the server refused the worker token (${code}): it was revoked, or is not a worker token of this server`);
  }
}

/** 409 LEASE_LOST: the attempt is someone else's now; nothing was changed. */
export class LeaseLost extends Error {
  override name = 'LeaseLost';
  constructor() {
    super('the lease is no longer held');
  }
}

/** A 4xx the worker cannot fix by trying again (a bug in the worker, or a server it does not fit). */
export class WorkerCallRefused extends Error {
  override name = 'WorkerCallRefused';
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(`the server refused the call: ${status} ${code}: ${detail}`);
  }
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 10_000;

export interface CallOptions {
  /** Try again on network errors, 5xx and 429, with capped backoff, until `abandon` fires. Default true. */
  retry?: boolean;
  /** One try's time limit; the claim long poll sets its own. */
  timeoutMs?: number;
  /** Stops retrying (and the call in flight). */
  signal?: AbortSignal;
}

/**
 * Easel's worker API over HTTP, with the token. An unreachable API is ridden out: calls are tried
 * again with capped backoff (every call is repeat-safe: fenced by the lease, or idempotent).
 * A 401 is final (WorkerTokenRefused), and so is a 409 (LeaseLost).
 */
export class WorkerApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly log: Logger,
    /** Fires when no call is worth waiting for any more (shutdown past its grace, a refused token). */
    private readonly abandon: AbortSignal,
  ) {}

  json<T>(path: string, body: unknown, options: CallOptions = {}): Promise<T> {
    return this.call<T>('POST', path, { 'content-type': 'application/json' }, JSON.stringify(body), options);
  }

  upload<T>(path: string, contentType: string, data: Buffer, options: CallOptions = {}): Promise<T> {
    return this.call<T>('PUT', path, { 'content-type': contentType }, data, options);
  }

  private async call<T>(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | Buffer,
    options: CallOptions,
  ): Promise<T> {
    const retry = options.retry ?? true;
    const stop = options.signal ? AbortSignal.any([this.abandon, options.signal]) : this.abandon;
    for (let delay = FIRST_DELAY_MS, tries = 1; ; delay = Math.min(delay * 2, MAX_DELAY_MS), tries++) {
      let failure: unknown;
      try {
        const response = await fetch(this.baseUrl + path, {
          method,
          headers: { ...headers, authorization: `Bearer ${this.token}` },
          body,
          signal: AbortSignal.any([stop, AbortSignal.timeout(options.timeoutMs ?? 30_000)]),
        });
        const text = await response.text();
        const parsed = parseJson(text);
        if (response.ok) {
          if (tries > 1) this.log.info({ path, tries }, 'the Easel API answered again');
          return parsed as T;
        }
        const code = typeof parsed?.code === 'string' ? parsed.code : `HTTP_${response.status}`;
        if (response.status === 401) throw new WorkerTokenRefused(code);
        if (response.status === 409 && code === 'LEASE_LOST') throw new LeaseLost();
        if (response.status < 500 && response.status !== 429) {
          throw new WorkerCallRefused(response.status, code, typeof parsed?.detail === 'string' ? parsed.detail : text);
        }
        failure = new Error(`${method} ${path}: ${response.status} ${code}`);
      } catch (error) {
        if (error instanceof WorkerTokenRefused || error instanceof LeaseLost || error instanceof WorkerCallRefused) {
          throw error;
        }
        failure = error;
      }
      if (!retry || stop.aborted) throw failure;
      if (tries === 1) this.log.warn({ err: failure, path }, 'the Easel API did not answer; trying again');
      try {
        await sleep(delay * (0.8 + 0.4 * Math.random()), undefined, { signal: stop });
      } catch {
        throw failure;
      }
    }
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
