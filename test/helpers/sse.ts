import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** A live SSE connection that records every message, for assertions. */
export interface SseRecorder {
  messages: EventSourceMessage[];
  updates(): Array<{ event_id: string; type: string; task_id: string; status: string } & Record<string, unknown>>;
  waitFor(predicate: (messages: EventSourceMessage[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the stream ends, whether the server or `close()` ended it. */
  ended: Promise<void>;
  /** True once the server has ended the stream. */
  isEnded(): boolean;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseRecorder> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  if (response.status !== 200 || !response.body)
    throw new Error(`SSE ${url} answered ${response.status}: ${await response.text()}`);
  const messages: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => messages.push(message) });
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  let endedByServer = false;
  const ended = (async () => {
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) {
          endedByServer = true;
          return;
        }
        parser.feed(decoder.decode(chunk.value, { stream: true }));
      }
    } catch {
      // closed by the test
    }
  })();
  const recorder: SseRecorder = {
    messages,
    updates: () => messages.filter((m) => m.event === 'task_update').map((m) => JSON.parse(m.data)),
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(messages)) {
        if (Date.now() > deadline)
          throw new Error(`SSE condition not met; got ${JSON.stringify(messages.map((m) => [m.event, m.data]))}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    ended,
    isEnded: () => endedByServer,
    close: () => controller.abort(),
  };
  return recorder;
}
