import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A local Volcengine visual API (`POST /?Action=CVSync2AsyncSubmitTask|CVSync2AsyncGetResult&Version=2022-08-31`).
 *
 * Every request must carry a valid V4 HMAC-SHA256 signature. The fake checks it over whatever
 * `SignedHeaders` the client declares (at least `x-date` and `x-content-sha256`), with its own
 * implementation below (written from the signing docs, sharing no code with src/), and refuses a
 * bad one with the OpenAPI gateway's `ResponseMetadata.Error` envelope, as Volcengine does.
 * Business answers follow the Jimeng API references: `{code, data, message, request_id, status,
 * time_elapsed}`, tasks going `in_queue` → `generating` → `done`, then `binary_data_base64`
 * or `image_urls` as GetResult's `req_json.return_url` asks.
 */

export interface BusinessFault {
  status: number;
  code: number;
  message: string;
}

export interface GatewayFault {
  status: number;
  code: string;
  codeN?: number;
  message: string;
}

export type VisualMalformation = 'not-json' | 'no-task-id' | 'unknown-status' | 'not-an-image' | 'no-images';

export interface SeenVisualRequest {
  action: string;
  body: Record<string, unknown>;
  signedHeaders: string;
  accessKeyId: string;
}

interface FakeTask {
  id: string;
  reqKey: string;
  body: Record<string, unknown>;
  polls: number;
  /** A business failure reported when the task is done (e.g. the output review refused it). */
  failure?: BusinessFault;
  expired: boolean;
}

const REQ_KEYS = new Set(['jimeng_t2i_v30', 'jimeng_t2i_v31', 'jimeng_t2i_v40', 'jimeng_i2i_v30']);
/** Signatures older or newer than this are refused (`InvalidTimestamp`); Volcengine's own window is not documented. */
const ALLOWED_SKEW_MS = 15 * 60 * 1000;

export class FakeVolcengineVisual {
  readonly requests: SeenVisualRequest[] = [];
  readonly tasks = new Map<string, FakeTask>();
  /** Requests whose client went away before the answer (abort, timeout). */
  aborted = 0;
  downloads = 0;
  /** GetResult polls a task spends `in_queue`, then `generating`, before it is done. */
  queuedPolls = 1;
  generatingPolls = 1;
  private submitFaults: Array<BusinessFault | GatewayFault> = [];
  private resultFaults: Array<BusinessFault | GatewayFault> = [];
  private doneFailures: BusinessFault[] = [];
  private malformed: VisualMalformation[] = [];
  private delayMs = 0;
  private readonly files = new Map<string, Buffer>();
  private readonly server = createServer((req, res) => {
    this.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
  url = '';

  /** Access key id → secret access key. */
  constructor(readonly keys: Record<string, string>) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): this {
    this.submitFaults = [];
    this.resultFaults = [];
    this.doneFailures = [];
    this.malformed = [];
    this.delayMs = 0;
    this.queuedPolls = 1;
    this.generatingPolls = 1;
    return this;
  }

  /** The next submit (after a valid signature) answers this instead. */
  failSubmit(fault: BusinessFault | GatewayFault): this {
    this.submitFaults.push(fault);
    return this;
  }

  /** The next GetResult (after a valid signature) answers this instead. */
  failResult(fault: BusinessFault | GatewayFault): this {
    this.resultFaults.push(fault);
    return this;
  }

  /** The next submitted task ends `done` with this business failure (e.g. 50511, output review). */
  failWhenDone(fault: BusinessFault): this {
    this.doneFailures.push(fault);
    return this;
  }

  malformNext(kind: VisualMalformation): this {
    this.malformed.push(kind);
    return this;
  }

  slow(ms: number): this {
    this.delayMs = ms;
    return this;
  }

  /** Volcengine forgets tasks after 12 h: GetResult then answers `not_found`. */
  expire(taskId: string): void {
    const task = this.tasks.get(taskId);
    if (task) task.expired = true;
  }

  submits(): SeenVisualRequest[] {
    return this.requests.filter((request) => request.action === 'CVSync2AsyncSubmitTask');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [path, rawQuery = ''] = (req.url ?? '/').split('?', 2) as [string, string?];
    if (req.method === 'GET' && path.startsWith('/files/')) return this.serveFile(path, res);
    const body = await readAll(req);
    const query = new URLSearchParams(rawQuery);
    const action = query.get('Action') ?? '';
    const envelope = (fault: GatewayFault) => this.sendGateway(res, action, fault);

    const verdict = verifySignature(req, path, rawQuery, body, this.keys);
    if ('fault' in verdict) return envelope(verdict.fault);
    if (req.method !== 'POST' || path !== '/') {
      return envelope({
        status: 404,
        code: 'InvalidActionOrVersion',
        codeN: 100008,
        message: `no ${req.method} ${path}`,
      });
    }
    if (
      query.get('Version') !== '2022-08-31' ||
      !['CVSync2AsyncSubmitTask', 'CVSync2AsyncGetResult'].includes(action)
    ) {
      return envelope({
        status: 404,
        code: 'InvalidActionOrVersion',
        codeN: 100008,
        message: `Could not find operation ${action} for version ${query.get('Version') ?? ''}`,
      });
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return this.sendBusiness(res, { status: 400, code: 50400, message: 'Invalid Request Body' });
    }
    this.requests.push({ action, body: json, signedHeaders: verdict.signedHeaders, accessKeyId: verdict.accessKeyId });
    await this.wait(req);
    if (res.destroyed) return;
    if (action === 'CVSync2AsyncSubmitTask') return this.submit(res, json);
    return this.getResult(res, json);
  }

  private submit(res: ServerResponse, body: Record<string, unknown>): void {
    const fault = this.submitFaults.shift();
    if (fault) return this.sendFault(res, 'CVSync2AsyncSubmitTask', fault);
    const reqKey = String(body.req_key ?? '');
    if (!REQ_KEYS.has(reqKey))
      return this.sendBusiness(res, { status: 400, code: 50400, message: `Invalid req_key ${reqKey}` });
    if (typeof body.prompt !== 'string' || body.prompt === '' || body.prompt.length > 800) {
      return this.sendBusiness(res, { status: 400, code: 50400, message: 'Invalid prompt' });
    }
    if ((body.width === undefined) !== (body.height === undefined)) {
      return this.sendBusiness(res, { status: 400, code: 50400, message: 'width and height must be set together' });
    }
    if (
      reqKey === 'jimeng_i2i_v30' &&
      (!Array.isArray(body.binary_data_base64) || body.binary_data_base64.length !== 1)
    ) {
      return this.sendBusiness(res, { status: 400, code: 50400, message: 'binary_data_base64 must hold one image' });
    }
    const malformation = this.malformed[0] === 'no-task-id' ? this.malformed.shift() : undefined;
    if (this.malformed[0] === 'not-json') {
      this.malformed.shift();
      return sendRaw(res, 200, 'text/html', '<html>gateway hiccup</html>');
    }
    const id = String(7_392_616_336_519_610_409n + BigInt(this.tasks.size));
    const failure = this.doneFailures.shift();
    this.tasks.set(id, { id, reqKey, body, polls: 0, expired: false, ...(failure ? { failure } : {}) });
    this.sendBusiness(res, { status: 200, code: 10000, message: 'Success' }, malformation ? {} : { task_id: id });
  }

  private async getResult(res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    const fault = this.resultFaults.shift();
    if (fault) return this.sendFault(res, 'CVSync2AsyncGetResult', fault);
    if (typeof body.req_json !== 'undefined' && typeof body.req_json !== 'string') {
      return this.sendBusiness(res, { status: 400, code: 50400, message: 'req_json must be a JSON string' });
    }
    const reqJson = body.req_json ? (JSON.parse(body.req_json) as { return_url?: boolean }) : {};
    const task = this.tasks.get(String(body.task_id ?? ''));
    if (!task || task.expired)
      return this.sendBusiness(res, ok, { status: 'not_found', binary_data_base64: null, image_urls: null });
    if (body.req_key !== task.reqKey) {
      return this.sendBusiness(res, { status: 400, code: 50400, message: 'req_key does not match the task' });
    }
    // Answer-level malformations hit the next poll; result-level ones wait for the done answer.
    const take = (kinds: VisualMalformation[]) =>
      this.malformed[0] && kinds.includes(this.malformed[0]) ? this.malformed.shift() : undefined;
    const early = take(['not-json', 'unknown-status']);
    if (early === 'not-json') return sendRaw(res, 200, 'text/html', '<html>gateway hiccup</html>');
    if (early === 'unknown-status') return this.sendBusiness(res, ok, { status: 'thinking' });
    task.polls += 1;
    if (task.polls <= this.queuedPolls)
      return this.sendBusiness(res, ok, { status: 'in_queue', binary_data_base64: null, image_urls: null });
    if (task.polls <= this.queuedPolls + this.generatingPolls) {
      return this.sendBusiness(res, ok, { status: 'generating', binary_data_base64: null, image_urls: null });
    }
    if (task.failure)
      return this.sendBusiness(res, task.failure, { status: 'done', binary_data_base64: null, image_urls: null });
    const malformation = take(['no-images', 'not-an-image']);
    if (malformation === 'no-images')
      return this.sendBusiness(res, ok, { status: 'done', binary_data_base64: [], image_urls: [] });
    const bytes =
      malformation === 'not-an-image'
        ? Buffer.from('definitely not an image')
        : await render(Number(task.body.width ?? 2048), Number(task.body.height ?? 2048));
    if (reqJson.return_url) {
      const name = `${randomUUID()}.jpeg`;
      this.files.set(name, bytes);
      return this.sendBusiness(res, ok, {
        status: 'done',
        binary_data_base64: null,
        image_urls: [`${this.url}/files/${name}`],
      });
    }
    this.sendBusiness(res, ok, { status: 'done', binary_data_base64: [bytes.toString('base64')], image_urls: null });
  }

  private sendFault(res: ServerResponse, action: string, fault: BusinessFault | GatewayFault): void {
    if (typeof fault.code === 'number') return this.sendBusiness(res, fault as BusinessFault);
    this.sendGateway(res, action, fault as GatewayFault);
  }

  private sendBusiness(res: ServerResponse, outcome: BusinessFault, data: Record<string, unknown> | null = null): void {
    sendJson(res, outcome.status, {
      code: outcome.code,
      data,
      message: outcome.message,
      request_id: requestId(),
      status: outcome.code,
      time_elapsed: '104.852309ms',
    });
  }

  private sendGateway(res: ServerResponse, action: string, fault: GatewayFault): void {
    sendJson(res, fault.status, {
      ResponseMetadata: {
        RequestId: requestId(),
        Action: action,
        Version: '2022-08-31',
        Service: 'cv',
        Region: 'cn-north-1',
        Error: { ...(fault.codeN ? { CodeN: fault.codeN } : {}), Code: fault.code, Message: fault.message },
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
    const file = this.files.get(path.slice('/files/'.length));
    if (!file) return sendRaw(res, 404, 'application/xml', '<Error><Code>NoSuchKey</Code></Error>');
    this.downloads += 1;
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': file.length });
    res.end(file);
  }
}

const ok: BusinessFault = { status: 200, code: 10000, message: 'Success' };

// ---------------------------------------------------------------------------------------------
// Signature check, independent of src/providers/volcengine/signer.ts.

type Verdict = { fault: GatewayFault } | { accessKeyId: string; signedHeaders: string };

const AUTH_PATTERN =
  /^HMAC-SHA256 Credential=([^/\s]+)\/(\d{8})\/([^/\s]+)\/([^/\s]+)\/request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

function verifySignature(
  req: IncomingMessage,
  path: string,
  rawQuery: string,
  body: Buffer,
  keys: Record<string, string>,
): Verdict {
  const authorization = req.headers.authorization;
  if (!authorization) {
    return {
      fault: {
        status: 401,
        code: 'MissingAuthenticationToken',
        codeN: 100003,
        message: 'Request is missing Authentication Token.',
      },
    };
  }
  const match = AUTH_PATTERN.exec(authorization);
  if (!match) {
    return {
      fault: {
        status: 401,
        code: 'InvalidAuthorization',
        codeN: 100011,
        message: 'The Authorization header is malformed.',
      },
    };
  }
  const [, accessKeyId, scopeDate, region, service, signedHeaders, signature] = match as unknown as string[];
  const secret = keys[accessKeyId!];
  if (secret === undefined) {
    return {
      fault: {
        status: 401,
        code: 'InvalidAccessKey',
        codeN: 100009,
        message: `The accesskey [${accessKeyId}] included in the request is invalid.`,
      },
    };
  }
  const names = signedHeaders!.split(';');
  if (!names.includes('x-date') || !names.includes('x-content-sha256')) {
    return { fault: mismatch('x-date and x-content-sha256 must be signed') };
  }
  const xDate = header(req, 'x-date');
  if (!/^\d{8}T\d{6}Z$/.test(xDate) || xDate.slice(0, 8) !== scopeDate)
    return { fault: mismatch('X-Date does not match the scope') };
  const when = Date.UTC(
    +xDate.slice(0, 4),
    +xDate.slice(4, 6) - 1,
    +xDate.slice(6, 8),
    +xDate.slice(9, 11),
    +xDate.slice(11, 13),
    +xDate.slice(13, 15),
  );
  if (Math.abs(Date.now() - when) > ALLOWED_SKEW_MS) {
    return {
      fault: {
        status: 400,
        code: 'InvalidTimestamp',
        codeN: 100006,
        message: 'The signature of the request is expired.',
      },
    };
  }
  const bodyDigest = createHash('sha256').update(body).digest('hex');
  if (header(req, 'x-content-sha256') !== bodyDigest)
    return { fault: mismatch('X-Content-Sha256 is not the hash of the body') };
  if (region !== 'cn-north-1' || service !== 'cv') return { fault: mismatch(`wrong scope ${region}/${service}`) };

  let canonicalHeaders = '';
  for (const name of [...names].sort()) canonicalHeaders += `${name}:${header(req, name).trim()}\n`;
  const canonical = `${req.method}\n${path}\n${sortedQuery(rawQuery)}\n${canonicalHeaders}\n${signedHeaders}\n${bodyDigest}`;
  const toSign = `HMAC-SHA256\n${xDate}\n${scopeDate}/${region}/${service}/request\n${createHash('sha256').update(canonical).digest('hex')}`;
  let key: Buffer = Buffer.from(secret, 'utf8');
  for (const part of [scopeDate!, region!, service!, 'request']) key = createHmac('sha256', key).update(part).digest();
  const expected = createHmac('sha256', key).update(toSign).digest('hex');
  if (expected !== signature) return { fault: mismatch('') };
  return { accessKeyId: accessKeyId!, signedHeaders: signedHeaders! };
}

function mismatch(detail: string): GatewayFault {
  return {
    status: 401,
    code: 'SignatureDoesNotMatch',
    codeN: 100010,
    message: `The request signature we calculated does not match the signature you provided. Check your Secret Access Key and signing method.${detail ? ` (${detail})` : ''}`,
  };
}

function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** Each pair decoded, then re-encoded byte by byte (unreserved characters kept), sorted by key. */
function sortedQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const encode = (text: string) =>
    [...Buffer.from(text, 'utf8')]
      .map((byte) => {
        const char = String.fromCharCode(byte);
        return /[A-Za-z0-9\-_.~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
      })
      .join('');
  const decode = (text: string) => decodeURIComponent(text.replace(/\+/g, ' '));
  return rawQuery
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const at = pair.indexOf('=');
      const key = at === -1 ? pair : pair.slice(0, at);
      const value = at === -1 ? '' : pair.slice(at + 1);
      return `${encode(decode(key))}=${encode(decode(value))}`;
    })
    .sort()
    .join('&');
}

// ---------------------------------------------------------------------------------------------

async function render(width: number, height: number): Promise<Buffer> {
  const [r, g, b] = randomBytes(3);
  return sharp({ create: { width, height, channels: 3, background: { r: r!, g: g!, b: b! } } })
    .jpeg({ quality: 60 })
    .toBuffer();
}

function requestId(): string {
  return randomBytes(17).toString('hex').toUpperCase().slice(0, 34);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendRaw(res: ServerResponse, status: number, type: string, text: string): void {
  res.writeHead(status, { 'content-type': type });
  res.end(text);
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startFakeVolcengineVisual(keys: Record<string, string>): Promise<FakeVolcengineVisual> {
  return new FakeVolcengineVisual(keys).start();
}
