import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { zipSync } from 'fflate';
import { argon2id, blake2b } from 'hash-wasm';
import sharp from 'sharp';

/**
 * A local NovelAI: the account host's `POST /user/login {key}` → 201 `{accessToken}` and the
 * image host's `POST /ai/generate-image` → 200 ZIP of `image_N.png`, with NovelAI's NestJS
 * error bodies `{statusCode, message}`, its one-generation-per-account lock (429 "Concurrent
 * generation is locked"), and the request shape its clients send checked (V4's structured
 * prompt included). Access keys are derived here with hash-wasm's Argon2id and BLAKE2b, an
 * implementation independent of the adapter's @noble/hashes, so a wrong parameter on either
 * side fails the login. One server answers both hosts (tests point both base URLs at it).
 */

export interface NovelAIFault {
  status: number;
  message?: string;
  /** A raw body (e.g. Cloudflare's HTML page) instead of NovelAI's JSON. */
  rawBody?: string;
  /** Only for this path; default `/ai/generate-image`. */
  path?: string;
}

export type NovelAIMalformation = 'not-zip' | 'zip-without-images' | 'not-png';

export interface SeenGeneration {
  account: string;
  bearer: string;
  body: Record<string, unknown>;
}

const DAY_S = 24 * 60 * 60;

/** The access key as NovelAI's clients derive it, computed with hash-wasm (see the class comment). */
export async function independentAccessKey(email: string, password: string, lowercase = true): Promise<string> {
  const preSalt = `${password.slice(0, 6)}${lowercase ? email.toLowerCase() : email}novelai_data_access_key`;
  const salt = Buffer.from(await blake2b(preSalt, 128), 'hex');
  const raw = await argon2id({
    password,
    salt,
    iterations: 2,
    memorySize: Math.floor(2_000_000 / 1024),
    parallelism: 1,
    hashLength: 64,
    outputType: 'binary',
  });
  return Buffer.from(raw).toString('base64url').slice(0, 64);
}

/** An unsigned-looking JWT with the claims NovelAI's access tokens carry; the fake checks it by value. */
export function makeJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.${randomBytes(16).toString('base64url')}`;
}

export class FakeNovelAI {
  readonly generations: SeenGeneration[] = [];
  /** Logins by account email, successful ones only. */
  readonly logins = new Map<string, number>();
  /** Generation requests whose client went away before the answer. */
  aborted = 0;
  /** Generations refused with the concurrent-generation 429. */
  lockRefusals = 0;
  /** Access tokens issued at login live this long. */
  tokenLifetimeS = 30 * DAY_S;
  private readonly keys = new Map<string, string>();
  private readonly tokens = new Map<string, string>();
  private readonly busy = new Set<string>();
  private faults: NovelAIFault[] = [];
  private malformed: NovelAIMalformation[] = [];
  private delayMs = 0;
  private readonly server = createServer((req, res) => {
    this.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * An account that can sign in with email + password. `caseKept`: its key was made from the
   * email as typed, capitals and all (a client that does not lowercase it).
   */
  async addAccount(email: string, password: string, caseKept = false): Promise<this> {
    this.keys.set(await independentAccessKey(email, password, !caseKept), email.toLowerCase());
    return this;
  }

  /** A persistent API token (`pst-…`) of an account. */
  addPersistentToken(token: string, account: string): this {
    this.tokens.set(token, account);
    return this;
  }

  /** Make every access token issued so far stop working (as a password change does). */
  revokeAccessTokens(): this {
    for (const token of [...this.tokens.keys()]) if (!token.startsWith('pst-')) this.tokens.delete(token);
    return this;
  }

  /** The next requests (of `fault.path`) fail with these, in order. */
  failNext(...faults: NovelAIFault[]): this {
    this.faults.push(...faults);
    return this;
  }

  malformNext(...kinds: NovelAIMalformation[]): this {
    this.malformed.push(...kinds);
    return this;
  }

  /** Hold each generation this long before answering. */
  delay(ms: number): this {
    this.delayMs = ms;
    return this;
  }

  /** Mark an account as generating elsewhere (the web client), so that its next generation meets the lock. */
  lock(account: string, locked = true): this {
    if (locked) this.busy.add(account);
    else this.busy.delete(account);
    return this;
  }

  reset(): this {
    this.faults = [];
    this.malformed = [];
    this.delayMs = 0;
    this.busy.clear();
    this.generations.length = 0;
    this.logins.clear();
    this.aborted = 0;
    this.lockRefusals = 0;
    this.tokenLifetimeS = 30 * DAY_S;
    return this;
  }

  private takeFault(path: string): NovelAIFault | undefined {
    const index = this.faults.findIndex((fault) => (fault.path ?? '/ai/generate-image') === path);
    return index < 0 ? undefined : this.faults.splice(index, 1)[0];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', this.url).pathname;
    const body = await readBody(req);
    if (req.method !== 'POST') return nestError(res, 404, `Cannot ${req.method} ${path}`);
    const fault = this.takeFault(path);
    if (fault) {
      if (fault.rawBody !== undefined) {
        res.writeHead(fault.status, { 'content-type': 'text/html' });
        return void res.end(fault.rawBody);
      }
      return nestError(res, fault.status, fault.message ?? `scripted failure ${fault.status}`);
    }
    if (path === '/user/login') return this.login(body, res);
    if (path === '/ai/generate-image') return this.generate(req, body, res);
    return nestError(res, 404, `Cannot POST ${path}`);
  }

  private login(text: string, res: ServerResponse): void {
    const key = (parseJson(text) as { key?: unknown } | undefined)?.key;
    if (typeof key !== 'string' || key.length !== 64) return nestError(res, 400, 'key must be a 64-character string');
    const account = this.keys.get(key);
    if (!account) return nestError(res, 401, 'Incorrect access key.');
    const now = Math.floor(Date.now() / 1000);
    const token = makeJwt({ id: account, iat: now, exp: now + this.tokenLifetimeS });
    this.tokens.set(token, account);
    this.logins.set(account, (this.logins.get(account) ?? 0) + 1);
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ accessToken: token }));
  }

  private async generate(req: IncomingMessage, text: string, res: ServerResponse): Promise<void> {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const account = this.tokens.get(bearer);
    if (!account) return nestError(res, 401, 'Unauthorized');
    const body = parseJson(text) as Record<string, unknown> | undefined;
    const problem = body ? checkRequest(body) : 'body is not JSON';
    if (problem) return nestError(res, 400, problem);
    if (this.busy.has(account)) {
      this.lockRefusals += 1;
      return nestError(res, 429, 'Concurrent generation is locked');
    }
    this.generations.push({ account, bearer, body: body! });
    this.busy.add(account);
    let gone = false;
    let wake = () => {};
    res.on('close', () => {
      if (!res.writableFinished) gone = true;
      wake();
    });
    try {
      if (this.delayMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.delayMs);
          // A client that hangs up ends the wait, as NovelAI drops a generation nobody collects.
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (gone) {
        this.aborted += 1;
        return;
      }
      const zip = await this.answer(body!);
      res.writeHead(200, { 'content-type': 'application/x-zip-compressed', 'content-length': zip.length });
      res.end(zip);
    } finally {
      this.busy.delete(account);
    }
  }

  private async answer(body: Record<string, unknown>): Promise<Buffer> {
    const kind = this.malformed.shift();
    if (kind === 'not-zip') return Buffer.from('<html>502 Bad Gateway</html>');
    if (kind === 'zip-without-images') return Buffer.from(zipSync({ 'readme.txt': Buffer.from('nothing') }));
    const parameters = body.parameters as { width: number; height: number; n_samples: number; seed: number };
    const files: Record<string, Uint8Array> = {};
    for (let index = 0; index < parameters.n_samples; index += 1) {
      files[`image_${index}.png`] =
        kind === 'not-png'
          ? Buffer.from('not a png')
          : await sharp({
              create: {
                width: parameters.width,
                height: parameters.height,
                channels: 3,
                background: { r: (parameters.seed + index) % 256, g: 80, b: 160 },
              },
            })
              .png()
              .toBuffer();
    }
    return Buffer.from(zipSync(files, { level: 0 }));
  }
}

const V4_MODELS = /^nai-diffusion-4/;

/** What NovelAI refuses with a 400: the checks its validation makes that a client can get wrong. */
function checkRequest(body: Record<string, unknown>): string | undefined {
  if (typeof body.input !== 'string' || body.input === '') return 'input must be a non-empty string';
  if (typeof body.model !== 'string') return 'model must be a string';
  if (body.action !== 'generate' && body.action !== 'img2img') return 'action must be generate or img2img';
  const p = body.parameters as Record<string, unknown> | undefined;
  if (!p) return 'parameters are required';
  for (const name of ['width', 'height'] as const) {
    if (typeof p[name] !== 'number' || (p[name] as number) % 64 !== 0) return `${name} must be a multiple of 64`;
  }
  if (typeof p.n_samples !== 'number' || p.n_samples < 1 || p.n_samples > 8) return 'n_samples must be 1-8';
  if (typeof p.seed !== 'number' || p.seed < 0 || p.seed > 4294967295) return 'seed out of range';
  if (typeof p.scale !== 'number' || p.scale < 0 || p.scale > 10) return 'scale must be 0-10';
  if (typeof p.steps !== 'number' || p.steps < 1 || p.steps > 50) return 'steps must be 1-50';
  if (typeof p.sampler !== 'string') return 'sampler is required';
  if (body.action === 'img2img' && (typeof p.image !== 'string' || typeof p.strength !== 'number')) {
    return 'img2img needs image and strength';
  }
  if (V4_MODELS.test(body.model)) {
    const v4 = p.v4_prompt as {
      caption?: { base_caption?: unknown; char_captions?: unknown };
      use_coords?: unknown;
      use_order?: unknown;
    };
    const v4n = p.v4_negative_prompt as { caption?: { base_caption?: unknown; char_captions?: unknown } };
    if (!v4?.caption || typeof v4.caption.base_caption !== 'string')
      return 'v4_prompt.caption.base_caption is required';
    if (v4.caption.base_caption !== body.input) return 'v4_prompt base_caption must equal input';
    if (typeof v4.use_coords !== 'boolean' || typeof v4.use_order !== 'boolean')
      return 'v4_prompt use_coords/use_order required';
    if (!v4n?.caption || typeof v4n.caption.base_caption !== 'string') return 'v4_negative_prompt.caption is required';
    const captions = v4.caption.char_captions;
    const negatives = v4n.caption.char_captions;
    if (!Array.isArray(captions) || !Array.isArray(negatives) || captions.length !== negatives.length) {
      return 'char_captions of v4_prompt and v4_negative_prompt must be arrays of the same length';
    }
    for (const caption of [...captions, ...negatives] as Array<{ char_caption?: unknown; centers?: unknown }>) {
      if (typeof caption.char_caption !== 'string' || !Array.isArray(caption.centers) || caption.centers.length === 0) {
        return 'each char_caption needs a caption and centers';
      }
      for (const center of caption.centers as Array<{ x?: unknown; y?: unknown }>) {
        if (
          typeof center.x !== 'number' ||
          typeof center.y !== 'number' ||
          center.x < 0 ||
          center.x > 1 ||
          center.y < 0 ||
          center.y > 1
        ) {
          return 'centers must be {x, y} within 0-1';
        }
      }
    }
    if (!Array.isArray(p.characterPrompts) || p.characterPrompts.length !== captions.length) {
      return 'characterPrompts must match the char_captions';
    }
  } else if (p.v4_prompt !== undefined) {
    return 'v4_prompt is only for V4 models';
  }
  return undefined;
}

function nestError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ statusCode: status, message }));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const startFakeNovelAI = () => new FakeNovelAI().start();
