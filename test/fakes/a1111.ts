import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A local AUTOMATIC1111 WebUI API (`/sdapi/v1`, as `modules/api/api.py` and `models.py` serve it):
 * txt2img and img2img run as real jobs over time, one at a time behind a queue lock (a second
 * request waits, it is never refused), `/progress` reports the running job with a live preview
 * in `current_image`, and `/interrupt` ends the job after its current step, the generation
 * request then answering with what it has, as the WebUI does. Optional `--api-auth` basic auth
 * (401 with `WWW-Authenticate: Basic`), FastAPI-style 422 for an invalid body, the WebUI's
 * `{error, detail, body, errors}` body for failures, and scripted faults. `stop()` and `start()`
 * on the same port stand in for a GPU machine going away and coming back.
 */

export type A1111Fault =
  | { kind: 'status'; status: number; body: unknown }
  | { kind: 'oom' }
  | { kind: 'malformed' }
  /** Answer only after this long (the job itself runs normally). */
  | { kind: 'slow'; ms: number };

export interface SeenGeneration {
  path: string;
  body: Record<string, unknown>;
  authorization: string | undefined;
}

interface Job {
  steps: number;
  step: number;
  interrupted: boolean;
  preview: string | null;
}

const SAMPLERS = ['Euler a', 'Euler', 'DPM++ 2M', 'DPM++ SDE'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class FakeA1111 {
  readonly generations: SeenGeneration[] = [];
  interrupts = 0;
  progressPolls = 0;
  /** Adds the WebUI's grid image in front of batches of more than one (the `return_grid` setting). */
  returnGrid = false;
  private faults: A1111Fault[] = [];
  private job: Job | undefined;
  private lock: Promise<void> = Promise.resolve();
  private port = 0;
  private readonly server = createServer((req, res) => {
    this.handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });

  constructor(
    readonly options: {
      /** `user:pass` as `--api-auth` takes it. */
      auth?: string;
      /** How long one sampling step takes. */
      stepMs?: number;
      /** Listen on this port (to bring a "machine" back at the address Easel knows); default any free one. */
      port?: number;
    } = {},
  ) {
    this.port = options.port ?? 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The URL with user info, as an `A1111_URLS` entry. */
  get credentialUrl(): string {
    if (!this.options.auth) return this.url;
    return `http://${this.options.auth}@127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.job !== undefined;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening; the port then refuses connections until `start()` again. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  close(): Promise<void> {
    return this.stop();
  }

  /** The next generation requests fail or misbehave in this order. */
  fail(...faults: A1111Fault[]): this {
    this.faults.push(...faults);
    return this;
  }

  reset(): this {
    this.faults = [];
    this.returnGrid = false;
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req)) {
      send(res, 401, { detail: 'Incorrect username or password' }, { 'www-authenticate': 'Basic' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'GET' && url.pathname === '/sdapi/v1/progress') return this.progress(res, url);
    if (req.method === 'POST' && url.pathname === '/sdapi/v1/interrupt') {
      await drain(req);
      this.interrupts += 1;
      if (this.job) this.job.interrupted = true;
      send(res, 200, {});
      return;
    }
    if (req.method === 'POST' && (url.pathname === '/sdapi/v1/txt2img' || url.pathname === '/sdapi/v1/img2img')) {
      return this.generate(req, res, url.pathname);
    }
    send(res, 404, { detail: 'Not Found' });
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.options.auth) return true;
    return req.headers.authorization === `Basic ${Buffer.from(this.options.auth).toString('base64')}`;
  }

  private progress(res: ServerResponse, url: URL): void {
    this.progressPolls += 1;
    const job = this.job;
    const skipImage = url.searchParams.get('skip_current_image') !== 'false';
    send(res, 200, {
      progress: job ? job.step / job.steps : 0,
      eta_relative: job ? ((job.steps - job.step) * (this.options.stepMs ?? 20)) / 1000 : 0,
      state: {
        skipped: false,
        interrupted: job?.interrupted ?? false,
        job: job ? 'txt2img' : '',
        job_count: job ? 1 : 0,
        job_timestamp: '20250101000000',
        job_no: 0,
        sampling_step: job?.step ?? 0,
        sampling_steps: job?.steps ?? 0,
      },
      current_image: skipImage ? null : (job?.preview ?? null),
      textinfo: null,
    });
  }

  private async generate(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const text = (await drain(req)).toString('utf8');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      send(res, 422, { detail: [{ loc: ['body'], msg: 'Expecting value', type: 'value_error.jsondecode' }] });
      return;
    }
    const invalid = validate(body, path);
    if (invalid) {
      send(res, 422, { detail: [invalid] });
      return;
    }
    // api.py validate_sampler_name: an unknown sampler is an HTTPException 404.
    if (body.sampler_name !== undefined && !SAMPLERS.includes(body.sampler_name as string)) {
      send(res, 404, { error: 'HTTPException', detail: 'Sampler not found', body: '', errors: '' });
      return;
    }
    this.generations.push({ path, body, authorization: req.headers.authorization });
    const fault = this.faults.shift();
    if (fault?.kind === 'status') return send(res, fault.status, fault.body);
    if (fault?.kind === 'oom') {
      return send(res, 500, {
        error: 'OutOfMemoryError',
        detail: '',
        body: '',
        errors: 'CUDA out of memory. Tried to allocate 2.00 GiB',
      });
    }

    // The WebUI's queue_lock: one job at a time, later requests wait their turn.
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise((resolve) => (release = resolve));
    await previous;
    let answer: unknown;
    try {
      answer = await this.runJob(body);
    } finally {
      release();
    }
    if (fault?.kind === 'slow') await sleep(fault.ms);
    if (fault?.kind === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"images": ["iVBORw0KGgo');
      return;
    }
    if (!res.destroyed) send(res, 200, answer);
  }

  private async runJob(body: Record<string, unknown>): Promise<unknown> {
    const steps = body.steps as number;
    const job: Job = { steps, step: 0, interrupted: false, preview: null };
    this.job = job;
    try {
      while (job.step < steps && !job.interrupted) {
        await sleep(this.options.stepMs ?? 20);
        job.step += 1;
        const shade = Math.round((255 * job.step) / steps);
        job.preview = (await solid(64, 64, [shade, 0, 255 - shade])).toString('base64');
      }
    } finally {
      this.job = undefined;
    }
    const n = (body.batch_size as number) * ((body.n_iter as number | undefined) ?? 1);
    const seed = body.seed as number;
    const width = body.width as number;
    const height = body.height as number;
    const seeds = Array.from({ length: n }, (_, index) => (seed === -1 ? 1000 : seed) + index);
    const images = await Promise.all(seeds.map((s) => solid(width, height, [s % 256, 128, 64])));
    const withGrid = this.returnGrid && n > 1;
    if (withGrid) images.unshift(await solid(width * 2, height, [0, 0, 0]));
    const info = {
      prompt: body.prompt,
      all_prompts: seeds.map(() => body.prompt),
      negative_prompt: body.negative_prompt,
      seed: seeds[0],
      all_seeds: seeds,
      width,
      height,
      sampler_name: body.sampler_name ?? 'Euler a',
      cfg_scale: body.cfg_scale,
      steps,
      batch_size: body.batch_size,
      index_of_first_image: withGrid ? 1 : 0,
      infotexts: seeds.map((s) => `${String(body.prompt)}\nSteps: ${steps}, Seed: ${s}`),
    };
    return {
      images: images.map((image) => image.toString('base64')),
      parameters: body,
      info: JSON.stringify(info),
    };
  }
}

/** The checks the WebUI's pydantic model makes on the fields the adapter sends. */
function validate(
  body: Record<string, unknown>,
  path: string,
): { loc: string[]; msg: string; type: string } | undefined {
  for (const field of ['steps', 'width', 'height', 'batch_size', 'seed']) {
    if (body[field] !== undefined && !Number.isInteger(body[field])) {
      return { loc: ['body', field], msg: 'value is not a valid integer', type: 'type_error.integer' };
    }
  }
  if (typeof body.prompt !== 'string')
    return { loc: ['body', 'prompt'], msg: 'str type expected', type: 'type_error.str' };
  if (path.endsWith('img2img') && !Array.isArray(body.init_images)) {
    return { loc: ['body', 'init_images'], msg: 'field required', type: 'value_error.missing' };
  }
  return undefined;
}

function solid(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function drain(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export const startFakeA1111 = (options: ConstructorParameters<typeof FakeA1111>[0] = {}): Promise<FakeA1111> =>
  new FakeA1111(options).start();
