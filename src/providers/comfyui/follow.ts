import { ProviderError, RetryableError } from '../errors.js';
import type { Backend } from '../self-hosted/backend.js';
import type { PreviewImage, RunContext } from '../types.js';
import { readHistory, readQueue, type HistoryEntry } from './api.js';
import type { ComfyUIConfig } from './config.js';
import { errorForExecution, executionErrorOf } from './failure.js';
import { socketFor, type BackendSocket } from './socket.js';

/** While the websocket is up, /history is still read this often in case a message was missed. */
const SAFETY_POLL_FACTOR = 10;
/** Reads of /history and /queue that may fail in a row (a restarting proxy, a 502) before the attempt gives up. */
const MAX_FAILED_READS = 5;

/**
 * A subscription to one prompt's websocket messages, opened before the prompt is queued so
 * that its first messages are not missed. Messages wait in `inbox` until `followPrompt`
 * reads them.
 */
export class PromptWatch {
  readonly inbox: Array<{ type: string; data: Record<string, unknown> } | { type: 'preview'; preview: PreviewImage }> =
    [];
  private socket: BackendSocket | undefined;
  private unsubscribe: (() => void) | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly config: ComfyUIConfig,
  ) {}

  get connected(): boolean {
    return this.socket?.isOpen ?? false;
  }

  /** No socket, or its connection ended; one still connecting is left to finish. */
  get needsReconnect(): boolean {
    return this.socket?.isClosed ?? true;
  }

  /**
   * Subscribe (again, after a drop) under `promptId`; resolves once the socket is open or has
   * failed, or at once on abort (a hanging connect must not delay a cancel).
   */
  async watch(promptId: string, signal: AbortSignal): Promise<void> {
    this.unsubscribe?.();
    const socket = socketFor(this.backend, this.config.connectTimeoutMs);
    this.socket = socket;
    this.unsubscribe = socket.subscribe(promptId, {
      message: (type, data) => this.push({ type, data }),
      preview: (preview) => this.push({ type: 'preview', preview }),
      dropped: () => this.notify(),
    });
    if (signal.aborted) return;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      socket.opened,
      new Promise<void>((resolve) => {
        onAbort = resolve;
        signal.addEventListener('abort', onAbort);
      }),
    ]);
    signal.removeEventListener('abort', onAbort!);
  }

  /** Resolves on the next message, a drop, or after `ms`. */
  async next(ms: number, signal: AbortSignal): Promise<void> {
    if (this.inbox.length > 0 || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.wake = done;
    });
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private push(item: PromptWatch['inbox'][number]): void {
    this.inbox.push(item);
    this.notify();
  }

  private notify(): void {
    this.wake?.();
  }
}

/**
 * Wait for the prompt to finish and return its history entry. Websocket messages drive
 * progress (`queued` with the position, `generating` with the sampler's step, previews); the
 * outcome is always read from `/history`, which is also polled (often while the websocket is
 * down, rarely while it is up) so that a dropped socket or a missed message costs only time.
 * A prompt found neither in the history nor in the queue is gone (deleted by someone, or the
 * server restarted): retryable.
 */
export async function followPrompt(
  ctx: RunContext,
  backend: Backend,
  config: ComfyUIConfig,
  promptId: string,
  watch: PromptWatch,
): Promise<HistoryEntry> {
  let started = false;
  let pct = 0;
  let position: number | undefined;
  let lastPoll = Date.now();
  let failedReads = 0;
  // ComfyUI said the prompt ended; its history entry may trail the message by a moment.
  let ended = false;

  const settle = async (): Promise<HistoryEntry | undefined> => {
    try {
      const outcome = await read();
      failedReads = 0;
      return outcome;
    } catch (error) {
      // A lost prompt is retryable too: seen lost several reads in a row, it is lost for sure.
      const transient =
        error instanceof ProviderError && (error.errorClass === 'retryable' || error.errorClass === 'rate_limited');
      if (!transient || ctx.signal.aborted || ++failedReads >= MAX_FAILED_READS) throw error;
      ctx.log.warn(
        { err: error, prompt: promptId, failedReads },
        'reading the ComfyUI prompt state failed; trying again',
      );
      return undefined;
    }
  };

  const read = async (): Promise<HistoryEntry | undefined> => {
    lastPoll = Date.now();
    const entry = await readHistory(ctx, backend, promptId);
    if (entry) return finished(backend, promptId, entry);
    const queue = await readQueue(ctx, backend);
    if (queue.running.includes(promptId)) {
      if (!started) {
        started = true;
        ctx.progress('generating', pct);
      }
      return undefined;
    }
    const index = queue.pending.indexOf(promptId);
    if (index >= 0) {
      const now = index + 1 + queue.running.length;
      if (now !== position) {
        position = now;
        ctx.log.debug({ prompt: promptId, position }, 'prompt waiting in the ComfyUI queue');
        ctx.progress('queued', 0);
      }
      return undefined;
    }
    // It may have finished between the two reads.
    const late = await readHistory(ctx, backend, promptId);
    if (late) return finished(backend, promptId, late);
    throw new RetryableError(
      'PROVIDER_UNAVAILABLE',
      `comfyui: prompt ${promptId} is neither queued nor in the history of ${backend.baseUrl} (deleted there, or the server restarted)`,
    );
  };

  let outcome = await settle();
  while (!outcome) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const interval =
      watch.connected && failedReads === 0 && !ended
        ? config.pollIntervalMs * SAFETY_POLL_FACTOR
        : config.pollIntervalMs;
    await watch.next(Math.max(0, lastPoll + interval - Date.now()), ctx.signal);
    if (ctx.signal.aborted) throw ctx.signal.reason;

    let done = false;
    let queueChanged = false;
    for (const item of watch.inbox.splice(0)) {
      if (item.type === 'preview') {
        if ('preview' in item) ctx.progress('generating', pct, item.preview);
        continue;
      }
      const data = (item as { data: Record<string, unknown> }).data;
      switch (item.type) {
        case 'status':
          if (!started) queueChanged = true;
          break;
        case 'execution_start':
          started = true;
          ctx.progress('generating', 0);
          break;
        case 'progress': {
          const value = Number(data.value);
          const max = Number(data.max);
          if (Number.isFinite(value) && Number.isFinite(max) && max > 0) {
            started = true;
            pct = Math.min(100, Math.max(0, Math.round((value / max) * 100)));
            ctx.progress('generating', pct);
          }
          break;
        }
        case 'executing':
          if (data.node === null) done = true;
          break;
        case 'execution_success':
          done = true;
          break;
        case 'execution_error':
          throw errorForExecution(promptId, data);
        case 'execution_interrupted':
          if (ctx.signal.aborted) throw ctx.signal.reason;
          // Someone else interrupted it (the ComfyUI page, a global /interrupt): not this task's fault.
          throw new RetryableError(
            'PROVIDER_UNAVAILABLE',
            `comfyui: prompt ${promptId} was interrupted on ${backend.baseUrl} by someone else`,
          );
        default:
          break;
      }
    }

    const reconnect = !watch.connected;
    ended ||= done;
    if (done || reconnect || queueChanged || Date.now() - lastPoll >= interval) outcome = await settle();
    // A dropped socket is reopened at the polling pace, in the background so that a connect
    // that hangs does not slow the polling; ComfyUI resends the running prompt's `executing`
    // message to a client that reconnects.
    if (!outcome && watch.needsReconnect) void watch.watch(promptId, ctx.signal);
  }
  return outcome;
}

function finished(backend: Backend, promptId: string, entry: HistoryEntry): HistoryEntry {
  if (entry.status?.status_str === 'error') {
    const error = executionErrorOf(entry.status.messages);
    if (error) throw errorForExecution(promptId, error);
    const interrupted = entry.status.messages?.some(([type]) => type === 'execution_interrupted');
    throw new RetryableError(
      'PROVIDER_UNAVAILABLE',
      interrupted
        ? `comfyui: prompt ${promptId} was interrupted on ${backend.baseUrl} by someone else`
        : `comfyui: prompt ${promptId} failed on ${backend.baseUrl} without an error message`,
    );
  }
  return entry;
}
