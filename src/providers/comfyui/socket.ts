import { randomUUID } from 'node:crypto';
import { WebSocket } from 'undici';
import type { Backend } from '../self-hosted/backend.js';
import type { PreviewImage } from '../types.js';

/**
 * ComfyUI's websocket (`GET /ws?clientId=`), one per backend per worker process, shared by
 * every task this process runs there. It must be shared: ComfyUI keeps one socket per
 * clientId (`self.sockets[sid]`), so a second connection under Easel's client id would
 * silently take the first one's messages away.
 *
 * Text frames are `{type, data}`; prompt-scoped ones carry `data.prompt_id` and go to that
 * prompt's listener only; `status` (the queue changed) goes to every listener. Binary frames start with a 4-byte big-endian event type:
 * 1 = PREVIEW_IMAGE (then a 4-byte image type, 1 JPEG / 2 PNG, then the bytes; server.py
 * `send_image`), 4 = PREVIEW_IMAGE_WITH_METADATA (a 4-byte length, JSON metadata with
 * `prompt_id` and `image_type`, then the bytes). A type-1 frame names no prompt: it belongs to
 * the prompt executing on that socket, as ComfyUI runs one prompt at a time.
 */

/** Easel's client id at ComfyUI: one per worker process. */
export const EASEL_CLIENT_ID = randomUUID();

export interface PromptListener {
  message(type: string, data: Record<string, unknown>): void;
  preview(image: PreviewImage): void;
  /** The socket closed; no more messages will come through this subscription. */
  dropped(): void;
}

const IMAGE_TYPES: Record<number, string> = { 1: 'image/jpeg', 2: 'image/png' };

export class BackendSocket {
  private readonly listeners = new Map<string, Set<PromptListener>>();
  private executing: string | undefined;
  private closed = false;
  readonly opened: Promise<boolean>;
  private readonly socket: WebSocket;

  constructor(
    backend: Backend,
    private readonly onClose: (socket: BackendSocket) => void,
    connectTimeoutMs: number,
  ) {
    const url = new URL(`${backend.baseUrl}/ws`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('clientId', EASEL_CLIENT_ID);
    this.socket = new WebSocket(
      url,
      backend.authorization ? { headers: { authorization: backend.authorization } } : {},
    );
    this.socket.binaryType = 'arraybuffer';
    this.opened = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        resolve(false);
        this.close();
      }, connectTimeoutMs);
      this.socket.addEventListener('open', () => {
        clearTimeout(timer);
        resolve(true);
      });
      this.socket.addEventListener('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    this.socket.addEventListener('message', (event) => this.receive(event.data as unknown));
    this.socket.addEventListener('close', () => this.shutDown());
    this.socket.addEventListener('error', () => this.close());
  }

  /** Closed for good (failed to connect, dropped, or closed by us); a new one must be made. */
  get isClosed(): boolean {
    return this.closed;
  }

  get isOpen(): boolean {
    return !this.closed && this.socket.readyState === WebSocket.OPEN;
  }

  subscribe(promptId: string, listener: PromptListener): () => void {
    if (this.closed) {
      queueMicrotask(() => listener.dropped());
      return () => {};
    }
    const set = this.listeners.get(promptId) ?? new Set();
    set.add(listener);
    this.listeners.set(promptId, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(promptId);
      if (this.listeners.size === 0) this.close();
    };
  }

  close(): void {
    if (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN) {
      this.socket.close();
    }
    this.shutDown();
  }

  private shutDown(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    for (const set of this.listeners.values()) for (const listener of set) listener.dropped();
    this.listeners.clear();
  }

  private receive(data: unknown): void {
    if (typeof data === 'string') return this.receiveText(data);
    if (data instanceof ArrayBuffer) return this.receiveBinary(Buffer.from(data));
  }

  private receiveText(text: string): void {
    let message: { type?: unknown; data?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (typeof message.type !== 'string' || typeof message.data !== 'object' || message.data === null) return;
    const data = message.data as Record<string, unknown>;
    const promptId = typeof data.prompt_id === 'string' ? data.prompt_id : undefined;
    if (message.type === 'status') {
      // The queue changed (broadcast to every client): waiting prompts may have moved up.
      for (const set of [...this.listeners.values()]) for (const listener of [...set]) listener.message('status', data);
      return;
    }
    if (!promptId) return;
    if (message.type === 'execution_start' || message.type === 'progress') this.executing = promptId;
    if (message.type === 'executing') this.executing = data.node === null ? undefined : promptId;
    for (const listener of [...(this.listeners.get(promptId) ?? [])]) listener.message(message.type, data);
  }

  private receiveBinary(frame: Buffer): void {
    if (frame.length < 8) return;
    const event = frame.readUInt32BE(0);
    let promptId = this.executing;
    let preview: PreviewImage | undefined;
    if (event === 1) {
      const contentType = IMAGE_TYPES[frame.readUInt32BE(4)];
      if (contentType) preview = { data: frame.subarray(8), contentType };
    } else if (event === 4) {
      const length = frame.readUInt32BE(4);
      if (8 + length > frame.length) return;
      let metadata: { prompt_id?: unknown; image_type?: unknown };
      try {
        metadata = JSON.parse(frame.subarray(8, 8 + length).toString('utf8')) as typeof metadata;
      } catch {
        return;
      }
      promptId = typeof metadata.prompt_id === 'string' ? metadata.prompt_id : promptId;
      const contentType = typeof metadata.image_type === 'string' ? metadata.image_type : 'image/jpeg';
      preview = { data: frame.subarray(8 + length), contentType };
    }
    if (!preview || !promptId || preview.data.length === 0) return;
    for (const listener of [...(this.listeners.get(promptId) ?? [])]) listener.preview(preview);
  }
}

const sockets = new Map<string, BackendSocket>();

/** The process's socket to `backend`, opened on first use and closed when its last prompt is done. */
export function socketFor(backend: Backend, connectTimeoutMs: number): BackendSocket {
  const key = `${backend.baseUrl}\n${backend.authorization ?? ''}`;
  const existing = sockets.get(key);
  if (existing) return existing;
  const socket = new BackendSocket(
    backend,
    (closed) => {
      if (sockets.get(key) === closed) sockets.delete(key);
    },
    connectTimeoutMs,
  );
  sockets.set(key, socket);
  return socket;
}
