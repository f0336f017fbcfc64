import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { problemLine } from './problem-hints.js';

/** A small client for Easel's own HTTP API: what the CLI (and scripts) use. */
export class EaselClient {
  /** `apiKey`: sent as `Authorization: Bearer` on every request when given (EASEL_API_KEY). */
  constructor(
    readonly baseUrl: string,
    private readonly apiKey?: string,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.apiKey ? { ...extra, authorization: `Bearer ${this.apiKey}` } : extra;
  }

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
        headers: this.headers({
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...extraHeaders,
        }),
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
      throw new CliError(problemLine(problem.code, problem.detail, String(response.status)));
    }
    return { status: response.status, data };
  }

  /** POST one file as multipart/form-data (POST /v1/uploads), answering the parsed JSON. */
  async upload<T>(path: string, field: string, bytes: Buffer, filename: string): Promise<T> {
    const form = new FormData();
    form.append(field, new Blob([bytes]), filename);
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), { method: 'POST', body: form, headers: this.headers() });
    } catch (error) {
      throw new CliError(
        `cannot reach Easel at ${this.baseUrl} (${(error as Error).message}); is it running? Set EASEL_URL to point elsewhere.`,
      );
    }
    const data = (await response.json().catch(() => ({}))) as T & { code?: string; detail?: string };
    if (!response.ok) throw new CliError(problemLine(data.code, data.detail, String(response.status)));
    return data;
  }

  async download(path: string): Promise<Buffer> {
    const response = await fetch(new URL(path, this.baseUrl), { headers: this.headers() });
    if (!response.ok) throw new CliError(await failure(response, `download of ${path} failed`));
    return Buffer.from(await response.arrayBuffer());
  }

  /** Follow an SSE stream until `onMessage` returns true or `signal` aborts. */
  async stream(path: string, onMessage: (message: EventSourceMessage) => boolean, signal?: AbortSignal): Promise<void> {
    const response = await fetch(new URL(path, this.baseUrl), {
      headers: this.headers({ accept: 'text/event-stream' }),
      signal,
    });
    if (!response.ok || !response.body) throw new CliError(await failure(response, `event stream ${path} failed`));
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

/** A non-JSON answer's status, or a problem's code and detail with what to do about it. */
async function failure(response: Response, what: string): Promise<string> {
  const problem = (await response.json().catch(() => ({}))) as { code?: string; detail?: string };
  if (!problem.code) return `${what} with ${response.status}`;
  return `${what}: ${problemLine(problem.code, problem.detail, String(response.status))}`;
}

export function clientFromEnv(): EaselClient {
  return new EaselClient(
    process.env.EASEL_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`,
    process.env.EASEL_API_KEY?.trim() || undefined,
  );
}
