import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A local Volcengine Ark images endpoint, `POST /api/v3/images/generations` with Bearer API
 * keys. Answers as the Ark API reference and volcengine-python-sdk (`types/images`) describe:
 * `{model, created, data: [{url} | {b64_json}], usage}`, and errors as
 * `{error: {code, message, param, type}}` with Ark's codes (AuthenticationError,
 * InputTextSensitiveContentDetected, RateLimitExceeded.EndpointRPMExceeded, …).
 */

export interface ArkFault {
  status: number;
  code: string;
  message?: string;
  type?: string;
  headers?: Record<string, string>;
}

export type ArkMalformation = 'not-json' | 'no-data' | 'not-an-image' | 'empty-entry';

export interface SeenArkRequest {
  authorization: string | undefined;
  body: Record<string, unknown>;
}

/** Dated model ids the fake knows (and any `ep-…` endpoint id), with the sizes each takes. */
const MODELS: Record<string, 'seedream-3' | 'seededit-3' | 'seedream-4'> = {
  'doubao-seedream-3-0-t2i-250415': 'seedream-3',
  'doubao-seededit-3-0-i2i-250628': 'seededit-3',
  'doubao-seedream-4-0-250828': 'seedream-4',
};

const TYPES: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  429: 'TooManyRequests',
  500: 'InternalServerError',
};

export class FakeArk {
  readonly requests: SeenArkRequest[] = [];
  aborted = 0;
  downloads = 0;
  private faults: ArkFault[] = [];
  private malformed: ArkMalformation[] = [];
  private delayMs = 0;
  private readonly files = new Map<string, Buffer>();
  private readonly server = createServer((req, res) => {
    this.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
  url = '';
  /** With `/api/v3`, as `ARK_BASE_URL` takes it. */
  baseUrl = '';

  constructor(readonly keys: string[]) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.baseUrl = `${this.url}/api/v3`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): this {
    this.faults = [];
    this.malformed = [];
    this.delayMs = 0;
    return this;
  }

  failNext(fault: ArkFault): this {
    this.faults.push(fault);
    return this;
  }

  malformNext(kind: ArkMalformation): this {
    this.malformed.push(kind);
    return this;
  }

  slow(ms: number): this {
    this.delayMs = ms;
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]!;
    if (req.method === 'GET' && path.startsWith('/files/')) return this.serveFile(path, res);
    const raw = await readAll(req);
    // Ark has no /v1 alias: anything but the v3 path is a 404.
    if (req.method !== 'POST' || path !== '/api/v3/images/generations') {
      return sendError(res, { status: 404, code: 'NotFound', message: `The requested resource ${path} is not found.` });
    }
    const authorization = req.headers.authorization;
    const key = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    if (!key || !this.keys.includes(key)) {
      return sendError(res, {
        status: 401,
        code: 'AuthenticationError',
        message: 'The API key or AK/SK in the request is missing or invalid.',
      });
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      return sendError(res, { status: 400, code: 'InvalidParameter', message: 'The request body is not JSON.' });
    }
    this.requests.push({ authorization, body });
    const fault = this.faults.shift();
    if (fault) return sendError(res, fault);
    const refusal = validate(body);
    if (refusal) return sendError(res, refusal);
    await this.wait(req);
    if (res.destroyed) return;
    await this.answer(res, body);
  }

  private async answer(res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    const malformation = this.malformed.shift();
    if (malformation === 'not-json') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>gateway hiccup</html>');
      return;
    }
    if (malformation === 'no-data') return sendJson(res, 200, { model: body.model, created: now() });
    const size = String(body.size);
    const [width, height] = size === 'adaptive' ? [1024, 1024] : (size.split('x').map(Number) as [number, number]);
    let entry: Record<string, string> = {};
    if (malformation !== 'empty-entry') {
      const bytes = malformation === 'not-an-image' ? Buffer.from('not an image') : await render(width, height);
      if (body.response_format === 'b64_json') entry = { b64_json: bytes.toString('base64') };
      else {
        const name = `${randomUUID()}.jpeg`;
        this.files.set(name, bytes);
        entry = { url: `${this.url}/files/${name}?X-Tos-Expires=86400` };
      }
    }
    sendJson(res, 200, {
      model: body.model,
      created: now(),
      data: [{ ...entry, ...(String(body.model).includes('4-0') ? { size: `${width}x${height}` } : {}) }],
      usage: {
        generated_images: 1,
        output_tokens: Math.round((width * height) / 256),
        total_tokens: Math.round((width * height) / 256),
      },
    });
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

  private serveFile(path: string, res: ServerResponse): void {
    const file = this.files.get(path.slice('/files/'.length).split('?')[0]!);
    if (!file) {
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<Error><Code>NoSuchKey</Code></Error>');
      return;
    }
    this.downloads += 1;
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': file.length });
    res.end(file);
  }
}

/** The parameter rules of the Ark API reference, refused as `InvalidParameter` with `param`. */
function validate(body: Record<string, unknown>): ArkFault | undefined {
  const model = String(body.model ?? '');
  const family = MODELS[model] ?? (model.startsWith('ep-') ? 'seedream-3' : undefined);
  const invalid = (param: string, message: string): ArkFault => ({
    status: 400,
    code: `InvalidParameter`,
    message: `The parameter \`${param}\` specified in the request is not valid: ${message}.`,
  });
  if (!family) {
    return {
      status: 404,
      code: 'InvalidEndpointOrModel.NotFound',
      message: `The model or endpoint ${model} does not exist or you do not have access to it.`,
    };
  }
  if (typeof body.prompt !== 'string' || body.prompt === '') return invalid('prompt', 'required');
  if (body.response_format !== undefined && !['url', 'b64_json'].includes(String(body.response_format))) {
    return invalid('response_format', 'must be url or b64_json');
  }
  if (
    body.seed !== undefined &&
    (!Number.isInteger(body.seed) || Number(body.seed) < -1 || Number(body.seed) > 2_147_483_647)
  ) {
    return invalid('seed', 'out of range');
  }
  if (family === 'seedream-4' && (body.seed !== undefined || body.guidance_scale !== undefined)) {
    return invalid(body.seed !== undefined ? 'seed' : 'guidance_scale', 'not supported by this model');
  }
  if (family === 'seededit-3') {
    if (body.size !== 'adaptive') return invalid('size', 'only adaptive is supported');
    if (typeof body.image !== 'string' || !/^data:image\/(png|jpeg|webp);base64,/.test(body.image))
      return invalid('image', 'required');
    return undefined;
  }
  const match = /^(\d+)x(\d+)$/.exec(String(body.size ?? '1024x1024'));
  if (!match) return invalid('size', 'expected WxH');
  const [width, height] = [Number(match[1]), Number(match[2])];
  if (family === 'seedream-3' && (width < 512 || height < 512 || width > 2048 || height > 2048)) {
    return invalid('size', 'must be within [512x512, 2048x2048]');
  }
  if (family === 'seedream-4' && (width * height < 1280 * 720 || width * height > 4096 * 4096)) {
    return invalid('size', 'total pixels must be within [1280x720, 4096x4096]');
  }
  return undefined;
}

async function render(width: number, height: number): Promise<Buffer> {
  const [r, g, b] = randomBytes(3);
  return sharp({ create: { width, height, channels: 3, background: { r: r!, g: g!, b: b! } } })
    .jpeg({ quality: 60 })
    .toBuffer();
}

function sendError(res: ServerResponse, fault: ArkFault): void {
  const id = `0217${randomBytes(12).toString('hex')}`;
  for (const [name, value] of Object.entries(fault.headers ?? {})) res.setHeader(name, value);
  res.setHeader('x-request-id', id);
  sendJson(res, fault.status, {
    error: {
      code: fault.code,
      message: `${fault.message ?? fault.code} Request id: ${id}`,
      param: '',
      type: fault.type ?? TYPES[fault.status] ?? 'BadRequest',
    },
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const now = () => Math.floor(Date.now() / 1000);

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startFakeArk(keys: string[]): Promise<FakeArk> {
  return new FakeArk(keys).start();
}
