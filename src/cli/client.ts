import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** `Authorization: Bearer $EASEL_API_KEY` when that variable is set; nothing otherwise (local mode). */
function authorization(): Record<string, string> {
  const key = process.env.EASEL_API_KEY?.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** A small client for Easel's own HTTP API: what the CLI (and scripts) use. */
export class EaselClient {
  constructor(readonly baseUrl: string) {}

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ status: number; data: T }> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          ...authorization(),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...extraHeaders,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new CliError(
        `cannot reach Easel at ${this.baseUrl} (${(error as Error).message}); is it running? Set EASEL_URL to point elsewhere.`,
      );
    }
    const text = await response.text();
    const data = text ? (JSON.parse(text) as T) : (undefined as T);
    if (!response.ok) {
      const problem = data as { code?: string; detail?: string };
      throw new CliError(`${problem.code ?? response.status}: ${problem.detail ?? response.statusText}`);
    }
    return { status: response.status, data };
  }

  /** POST one file as multipart/form-data (POST /v1/uploads), answering the parsed JSON. */
  async upload<T>(path: string, field: string, bytes: Buffer, filename: string): Promise<T> {
    const form = new FormData();
    form.append(field, new Blob([bytes]), filename);
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), { method: 'POST', body: form, headers: authorization() });
    } catch (error) {
      throw new CliError(
        `cannot reach Easel at ${this.baseUrl} (${(error as Error).message}); is it running? Set EASEL_URL to point elsewhere.`,
      );
    }
    const data = (await response.json().catch(() => ({}))) as T & { code?: string; detail?: string };
    if (!response.ok) throw new CliError(`${data.code ?? response.status}: ${data.detail ?? response.statusText}`);
    return data;
  }

  async download(path: string): Promise<Buffer> {
    const response = await fetch(new URL(path, this.baseUrl), { headers: authorization() });
    if (!response.ok) throw new CliError(`download of ${path} failed with ${response.status}`);
    return Buffer.from(await response.arrayBuffer());
  }

  /** Follow an SSE stream until `onMessage` returns true or `signal` aborts. */
  async stream(path: string, onMessage: (message: EventSourceMessage) => boolean, signal?: AbortSignal): Promise<void> {
    const response = await fetch(new URL(path, this.baseUrl), {
      headers: { ...authorization(), accept: 'text/event-stream' },
      signal,
    });
    if (!response.ok || !response.body) throw new CliError(`event stream ${path} failed with ${response.status}`);
    let done = false;
    const parser = createParser({ onEvent: (message) => (done ||= onMessage(message)) });
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    try {
      while (!done) {
        const chunk = await reader.read();
        if (chunk.done) break;
        parser.feed(decoder.decode(chunk.value, { stream: true }));
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }
}

/** An error for the person at the terminal: printed without a stack trace. */
export class CliError extends Error {
  override name = 'CliError';
}

export function clientFromEnv(): EaselClient {
  return new EaselClient(process.env.EASEL_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`);
}
