import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { Refusal, validate, type ModelRules, type SeenRequest } from './openai-rules.js';

export type { SeenRequest } from './openai-rules.js';

/**
 * A local OpenAI Images API: `POST /v1/images/generations` (JSON) and `POST /v1/images/edits`
 * (multipart/form-data), Bearer auth, and the per-model parameter rules the real API enforces,
 * refused with OpenAI's `{error: {message, type, param, code}}` body and an `x-request-id`.
 * Shapes checked against openai/openai-node `src/resources/images.ts` (ImageGenerateParamsBase,
 * ImageEditParamsBase, ImagesResponse), `src/core/error.ts` (APIError reads error.code / param /
 * type, and x-request-id), `src/internal/uploads.ts` (one file goes in `image`, an array in
 * `image[]`) and the API reference in the same repository (`api_reference/openapi.transformed.yml`).
 */

export interface OpenAIFault {
  status: number;
  /** `error.code`; `type` defaults by status. */
  code?: string | null;
  type?: string;
  message?: string;
  headers?: Record<string, string>;
  /** A raw body instead of OpenAI's error JSON. */
  rawBody?: string;
}

export type Malformation = 'not-json' | 'no-data' | 'not-an-image' | 'empty-entry';

const DEFAULT_TYPES: Record<number, string> = {
  401: 'invalid_request_error',
  403: 'invalid_request_error',
  429: 'requests',
  500: 'server_error',
  503: 'server_error',
};

export class FakeOpenAI {
  readonly requests: SeenRequest[] = [];
  /** Requests whose client went away before the answer (abort, timeout). */
  aborted = 0;
  /** Downloads of `url` results. */
  downloads = 0;
  private faults: OpenAIFault[] = [];
  private malformed: Malformation[] = [];
  private delayMs = 0;
  private readonly files = new Map<string, { bytes: Buffer; type: string }>();
  private readonly server = createServer((req, res) => {
    this.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
  url = '';
  /** The base URL with `/v1`, as `OPENAI_BASE_URL` takes it. */
  baseUrl = '';

  constructor(readonly keys: string[] = ['sk-test-openai-key']) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.baseUrl = `${this.url}/v1`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Forget scripted faults, malformations and delays (between tests). */
  reset(): this {
    this.faults = [];
    this.malformed = [];
    this.delayMs = 0;
    return this;
  }

  /** The next generation/edit request gets this failure instead (after auth). Queue several. */
  failNext(fault: OpenAIFault): this {
    this.faults.push(fault);
    return this;
  }

  /** The next successful answer is broken this way. */
  malformNext(kind: Malformation): this {
    this.malformed.push(kind);
    return this;
  }

  /** Answers wait this long (the client may give up first; `aborted` counts that). */
  slow(ms: number): this {
    this.delayMs = ms;
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = `req_${randomUUID().replace(/-/g, '')}`;
    res.setHeader('x-request-id', requestId);
    const path = (req.url ?? '').split('?')[0]!;
    if (req.method === 'GET' && path.startsWith('/files/')) return this.serveFile(path, res);
    const body = await readAll(req);
    try {
      if (req.method !== 'POST' || (path !== '/v1/images/generations' && path !== '/v1/images/edits')) {
        throw new Refusal(404, `Invalid URL (${req.method} ${path})`, null, null);
      }
      this.checkAuth(req);
      const seen = await parseRequest(req, path, body);
      this.requests.push(seen);
      const fault = this.faults.shift();
      if (fault) return sendFault(res, fault);
      const rules = await validate(seen);
      await this.wait(req);
      if (res.destroyed) return;
      await this.answer(res, seen, rules);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      sendJson(res, error.status, {
        error: { message: error.message, type: error.type, param: error.param, code: error.code },
      });
    }
  }

  private checkAuth(req: IncomingMessage): void {
    const header = req.headers.authorization;
    const key = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    if (!key) {
      throw new Refusal(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        null,
        null,
      );
    }
    if (!this.keys.includes(key)) {
      // OpenAI shows the start and the last four characters only.
      throw new Refusal(
        401,
        `Incorrect API key provided: ${key.slice(0, 3)}***${key.slice(-4)}.`,
        null,
        'invalid_api_key',
      );
    }
  }

  private async wait(req: IncomingMessage): Promise<void> {
    if (this.delayMs <= 0) return;
    await new Promise<void>((resolve) => {
      const onClose = () => {
        clearTimeout(timer);
        this.aborted += 1;
        resolve();
      };
      const timer = setTimeout(() => {
        req.socket.off('close', onClose);
        resolve();
      }, this.delayMs);
      req.socket.once('close', onClose);
    });
  }

  private async answer(res: ServerResponse, seen: SeenRequest, rules: ModelRules): Promise<void> {
    const malformation = this.malformed.shift();
    if (malformation === 'not-json') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>upstream hiccup</html>');
      return;
    }
    if (malformation === 'no-data') return sendJson(res, 200, { created: now() });
    const fields = seen.fields;
    const size = String(fields.size ?? (rules.family === 'gpt-image' ? 'auto' : '1024x1024'));
    const [width, height] = (size === 'auto' ? '1024x1024' : size).split('x').map(Number) as [number, number];
    const format = rules.family === 'gpt-image' ? String(fields.output_format ?? 'png') : 'png';
    const responseFormat = rules.family === 'gpt-image' ? 'b64_json' : String(fields.response_format ?? 'url');
    const n = Number(fields.n ?? 1);
    const data: Array<Record<string, string>> = [];
    for (let index = 0; index < n; index++) {
      if (malformation === 'empty-entry') {
        data.push({});
        continue;
      }
      const bytes =
        malformation === 'not-an-image'
          ? Buffer.from('definitely not an image')
          : await render(width, height, format, index);
      const entry: Record<string, string> = {};
      if (responseFormat === 'b64_json') entry.b64_json = bytes.toString('base64');
      else {
        const name = `${randomUUID()}.${format}`;
        this.files.set(name, { bytes, type: `image/${format}` });
        entry.url = `${this.url}/files/${name}`;
      }
      if (rules.family === 'dall-e-3') entry.revised_prompt = `A detailed rendering of ${String(fields.prompt)}`;
      data.push(entry);
    }
    sendJson(res, 200, {
      created: now(),
      data,
      ...(rules.family === 'gpt-image'
        ? {
            background: fields.background === 'transparent' ? 'transparent' : 'opaque',
            output_format: format,
            quality: fields.quality && fields.quality !== 'auto' ? fields.quality : 'medium',
            size: `${width}x${height}`,
            usage: {
              input_tokens: 10,
              input_tokens_details: { image_tokens: seen.files.image ? 300 : 0, text_tokens: 10 },
              output_tokens: 1056 * n,
              total_tokens: 10 + 1056 * n,
            },
          }
        : {}),
    });
  }

  private serveFile(path: string, res: ServerResponse): void {
    const file = this.files.get(path.slice('/files/'.length));
    if (!file) {
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<Error><Code>BlobNotFound</Code></Error>');
      return;
    }
    this.downloads += 1;
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.bytes.length });
    res.end(file.bytes);
  }
}

async function parseRequest(req: IncomingMessage, path: string, body: Buffer): Promise<SeenRequest> {
  const contentType = req.headers['content-type'];
  const seen: SeenRequest = {
    path,
    authorization: req.headers.authorization,
    headers: req.headers,
    fields: {},
    files: {},
    contentType,
  };
  if (path.endsWith('/generations')) {
    if (!contentType?.startsWith('application/json')) {
      throw new Refusal(400, 'Invalid Content-Type header: expected application/json.', null, null);
    }
    try {
      seen.fields = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new Refusal(400, 'We could not parse the JSON body of your request.', null, null);
    }
    return seen;
  }
  if (!contentType?.startsWith('multipart/form-data')) {
    throw new Refusal(400, 'Invalid Content-Type header: expected multipart/form-data.', null, null);
  }
  const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  for (const [key, value] of form.entries()) {
    if (typeof value === 'string')
      seen.fields[key] = key === 'n' || key === 'output_compression' ? Number(value) : value;
    else {
      seen.files[key] = {
        filename: value.name,
        contentType: value.type,
        bytes: Buffer.from(await value.arrayBuffer()),
      };
    }
  }
  return seen;
}

function sendFault(res: ServerResponse, fault: OpenAIFault): void {
  const headers = { ...fault.headers };
  if (fault.rawBody !== undefined) {
    res.writeHead(fault.status, { 'content-type': 'text/html', ...headers });
    res.end(fault.rawBody);
    return;
  }
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  sendJson(res, fault.status, {
    error: {
      message: fault.message ?? `fake failure ${fault.status}`,
      type: fault.type ?? DEFAULT_TYPES[fault.status] ?? 'invalid_request_error',
      param: null,
      code: fault.code ?? null,
    },
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const now = () => Math.floor(Date.now() / 1000);

/** A distinct solid colour per image, in the format asked for. */
function render(width: number, height: number, format: string, index: number): Promise<Buffer> {
  const image = sharp({
    create: { width, height, channels: 3, background: { r: (40 + index * 60) % 256, g: 120, b: 200 } },
  });
  if (format === 'jpeg') return image.jpeg().toBuffer();
  if (format === 'webp') return image.webp().toBuffer();
  return image.png().toBuffer();
}

export async function startFakeOpenAI(keys?: string[]): Promise<FakeOpenAI> {
  return new FakeOpenAI(keys).start();
}
