import { RetryableError } from '../errors.js';

export interface SseEvent {
  event: string;
  data: string;
}

/** Largest single event accepted; a Gradio frame holds a few FileData objects, not images. */
const MAX_EVENT_CHARS = 1024 * 1024;

/**
 * The events of a `text/event-stream` body, as Gradio's `/call/{api}/{event_id}` writes them:
 * `event: <name>` and `data: <json>` lines, a blank line between events. Ends when the body does.
 */
export async function* readSseEvents(body: ReadableStream<Uint8Array>, what: string): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const parsed = parseFrame(frame);
      if (parsed) yield parsed;
    }
    if (buffer.length > MAX_EVENT_CHARS) {
      throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: an event of the stream is too large`);
    }
  }
  const last = parseFrame(buffer);
  if (last) yield last;
}

function parseFrame(frame: string): SseEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length === 0 && event === 'message' ? undefined : { event, data: data.join('\n') };
}
