import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A fake Gradio 5.x Space serving the EasyControl Ghibli endpoint over Gradio's HTTP API, as
 * `@gradio/client` and the curl guide use it (`client/js/src/utils/upload_files.ts`: multipart
 * parts named `files` to `/gradio_api/upload`, the token as `Authorization: Bearer`; routes.py
 * `simple_predict_post/get`: `POST /gradio_api/call/{api}` → `{event_id}`, then the SSE stream
 * `event: heartbeat|generating|complete|error`). Output files are served at
 * `/gradio_api/file={path}` like FileData urls. Gradio's own tests cancel with
 * `POST /gradio_api/cancel {event_id, session_hash, fn_index}`.
 */
export type CallOutcome =
  | { kind: 'complete' }
  /** `event: error`; `data` is written as is (`null` below Gradio 6.13, `{"error":…}` from 6.13). */
  | { kind: 'error'; data: string }
  /** complete, but the output FileData is the uploaded input itself. */
  | { kind: 'echo-input' }
  /** complete, but the output file's bytes are exactly the input's. */
  | { kind: 'echo-bytes' }
  /** complete with outputs that are no FileData. */
  | { kind: 'malformed' }
  /** heartbeats only, never a result (until the client goes away). */
  | { kind: 'hang' }
  /** the stream ends without complete or error. */
  | { kind: 'cut' };

export interface GradioFake {
  url: string;
  counts: { uploads: number; calls: number; streams: number; downloads: number; cancels: number };
  /** Bodies of `POST /call/...`. */
  calls: Array<{ data: unknown[]; session_hash?: unknown; token: string | undefined }>;
  cancels: unknown[];
  /** Outcome of the next calls (then `complete`). */
  nextOutcome(outcome: CallOutcome): void;
  /** The next `POST /call` answers this status and body instead. */
  failNextCall(status: number, body: unknown, headers?: Record<string, string>): void;
  /** Forget every call (a Space restart): their streams answer "Session not found". */
  forgetCalls(): void;
  /** Where a call stands: pending, consumed (its end was read) or cleaned (its reader left early). */
  eventState(eventId: string): PendingCall['state'] | undefined;
  /** Stream events this far apart (ms). */
  eventGapMs: number;
  close(): Promise<void>;
}

interface PendingCall {
  outcome: CallOutcome;
  data: unknown[];
  /**
   * Like Gradio's queue: `pending` until a reader gets the final message (`consumed`: its queue is
   * empty, a new reader gets heartbeats only); a reader leaving early makes it `cleaned` (gone).
   */
  state: 'pending' | 'consumed' | 'cleaned';
}

/** The Space's `GET /config`: the endpoint's dependency id is the fn_index that cancel wants. */
export const GHIBLI_FN_INDEX = 3;

const API = 'single_condition_generate_image';

export async function startGradioFake(options: { tokens: string[] }): Promise<GradioFake> {
  const counts = { uploads: 0, calls: 0, streams: 0, downloads: 0, cancels: 0 };
  const uploads = new Map<string, Buffer>();
  const outputs = new Map<string, Buffer>();
  const events = new Map<string, PendingCall>();
  const outcomes: CallOutcome[] = [];
  const callFailures: Array<{ status: number; body: unknown; headers: Record<string, string> }> = [];
  const calls: GradioFake['calls'] = [];
  const cancels: unknown[] = [];
  const state = { eventGapMs: 5 };

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const tokenOf = (req: http.IncomingMessage) => /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];

  async function stream(res: http.ServerResponse, pending: PendingCall, base: string) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let gone = false;
    res.on('close', () => (gone = true));
    const send = async (event: string, data: string) => {
      if (gone) return;
      res.write(`event: ${event}\ndata: ${data}\n\n`);
      await new Promise((resolve) => setTimeout(resolve, state.eventGapMs));
    };
    // routes.py queue_data_helper: a reader that disconnects makes the queue clean the events.
    res.on('close', () => {
      if (pending.state === 'pending') pending.state = 'cleaned';
    });
    await send('heartbeat', 'null');
    const { outcome } = pending;
    if (outcome.kind === 'hang' || pending.state === 'consumed') {
      while (!gone) await send('heartbeat', 'null');
      return;
    }
    await send('generating', 'null');
    if (outcome.kind === 'error') await send('error', outcome.data);
    else if (outcome.kind === 'malformed') await send('complete', JSON.stringify(['not a file']));
    else if (outcome.kind !== 'cut') {
      const file = await makeOutput(pending, outcome.kind);
      await send('complete', JSON.stringify([file]));
    }
    pending.state = 'consumed';
    res.end();

    async function makeOutput(call: PendingCall, kind: 'complete' | 'echo-input' | 'echo-bytes') {
      const input = call.data[1] as { path: string };
      let path = input.path;
      if (kind !== 'echo-input') {
        const source = uploads.get(input.path)!;
        const [height, width] = [call.data[2] as number, call.data[3] as number];
        const bytes =
          kind === 'echo-bytes'
            ? source
            : await sharp(source).resize(width, height).negate({ alpha: false }).png().toBuffer();
        path = `/tmp/gradio/${randomBytes(8).toString('hex')}/image.png`;
        outputs.set(path, bytes);
      }
      return {
        path,
        url: `${base}/gradio_api/file=${path}`,
        size: null,
        orig_name: 'image.png',
        mime_type: null,
        is_stream: false,
        meta: { _type: 'gradio.FileData' },
      };
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://fake');
        const base = `http://${req.headers.host}`;
        const token = tokenOf(req);
        // A private Space (and ZeroGPU accounting) wants the user's token on every request.
        if (!token || !options.tokens.includes(token)) return json(res, 401, { detail: 'Invalid token' });
        const body = Buffer.concat(chunks);

        if (req.method === 'POST' && url.pathname === '/gradio_api/upload') {
          counts.uploads++;
          const form = await new Request('http://fake/upload', {
            method: 'POST',
            headers: { 'content-type': req.headers['content-type'] ?? '' },
            body,
          })
            .formData()
            .catch(() => undefined);
          const files = form?.getAll('files').filter((part): part is File => typeof part !== 'string') ?? [];
          if (files.length === 0) return json(res, 422, { detail: 'files: field required' });
          const paths: string[] = [];
          for (const file of files) {
            const bytes = Buffer.from(await file.arrayBuffer());
            const path = `/tmp/gradio/${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}/${file.name}`;
            uploads.set(path, bytes);
            paths.push(path);
          }
          return json(res, 200, paths);
        }

        if (req.method === 'POST' && url.pathname === `/gradio_api/call/${API}`) {
          counts.calls++;
          let parsed: { data?: unknown; session_hash?: unknown } = {};
          try {
            parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
          } catch {
            return json(res, 422, { detail: 'body is not JSON' });
          }
          calls.push({ data: parsed.data as unknown[], session_hash: parsed.session_hash, token });
          const failure = callFailures.shift();
          if (failure) return json(res, failure.status, failure.body, failure.headers);
          const problem = validateGhibliData(parsed.data, uploads);
          if (problem) return json(res, 422, { detail: problem });
          const eventId = randomBytes(16).toString('hex');
          events.set(eventId, {
            outcome: outcomes.shift() ?? { kind: 'complete' },
            data: parsed.data as unknown[],
            state: 'pending',
          });
          return json(res, 200, { event_id: eventId });
        }

        const streamMatch = new RegExp(`^/gradio_api/call/${API}/([0-9a-f]+)$`).exec(url.pathname);
        if (req.method === 'GET' && streamMatch) {
          counts.streams++;
          const pending = events.get(streamMatch[1]!);
          if (!pending || pending.state === 'cleaned') {
            // Gradio raises HTTPException(404) inside the already-started stream: it arrives as an event.
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            return res.end('event: error\ndata: "404: Session not found."\n\n');
          }
          return stream(res, pending, base);
        }

        if (req.method === 'GET' && url.pathname.startsWith('/gradio_api/file=')) {
          counts.downloads++;
          const bytes =
            outputs.get(url.pathname.slice('/gradio_api/file='.length)) ??
            uploads.get(url.pathname.slice('/gradio_api/file='.length));
          if (!bytes) return json(res, 404, { detail: 'File not found' });
          res.writeHead(200, { 'content-type': 'image/png' });
          return res.end(bytes);
        }

        if (req.method === 'GET' && url.pathname === '/config') {
          return json(res, 200, {
            version: '5.23.1',
            api_prefix: '/gradio_api',
            dependencies: [
              { id: 0, api_name: 'load_example' },
              { id: GHIBLI_FN_INDEX, api_name: API },
            ],
          });
        }

        if (req.method === 'POST' && url.pathname === '/gradio_api/cancel') {
          counts.cancels++;
          cancels.push(JSON.parse(body.toString('utf8') || 'null'));
          return json(res, 200, { success: true });
        }
        return json(res, 404, { detail: 'Not Found' });
      })().catch((error: unknown) => {
        if (!res.headersSent) json(res, 500, { detail: String(error) });
        else res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    calls,
    cancels,
    nextOutcome: (outcome) => void outcomes.push(outcome),
    failNextCall: (status, body, headers = {}) => void callFailures.push({ status, body, headers }),
    forgetCalls: () => events.clear(),
    eventState: (eventId) => events.get(eventId)?.state,
    get eventGapMs() {
      return state.eventGapMs;
    },
    set eventGapMs(ms: number) {
      state.eventGapMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The six inputs of /single_condition_generate_image: prompt, spatial_img, height, width, seed, control_type. */
function validateGhibliData(data: unknown, uploads: Map<string, Buffer>): string | undefined {
  if (!Array.isArray(data) || data.length !== 6) return 'data: expected 6 values';
  const [prompt, image, height, width, seed, controlType] = data as unknown[];
  if (typeof prompt !== 'string') return 'prompt: expected a string';
  const file = image as { path?: unknown; meta?: { _type?: unknown } } | null;
  if (!file || typeof file.path !== 'string' || file.meta?._type !== 'gradio.FileData') {
    return 'spatial_img: expected a FileData {path, meta: {_type: "gradio.FileData"}}';
  }
  if (!uploads.has(file.path)) return `spatial_img: no uploaded file at ${file.path}`;
  for (const [name, value] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isInteger(value) || (value as number) < 64 || (value as number) > 1024) {
      return `${name}: expected an integer from 64 to 1024`;
    }
  }
  if (!Number.isInteger(seed)) return 'seed: expected an integer';
  if (controlType !== 'Ghibli') return 'control_type: expected "Ghibli"';
  return undefined;
}
