import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A local Replicate: the prediction API as replicate-javascript speaks it (`lib/predictions.js`:
 * `POST /predictions` with `version`, `POST /models/{owner}/{name}/predictions`,
 * `GET /predictions/{id}`, `POST /predictions/{id}/cancel`; `Prefer: wait` / `wait=N` as the
 * client sends it) with the prediction object of `index.d.ts` (`id, status, input, output,
 * error, logs, data_removed, metrics, urls…`), problem-details error bodies (`{"detail": …}`),
 * and output files served from its own URL like replicate.delivery (no auth).
 *
 * It is stricter than Replicate where that catches adapter bugs: an input key a known model's
 * schema does not name is a 422 (Replicate's exact handling of extra keys is UNCONFIRMED).
 */

export type Outcome =
  | { kind: 'succeeded' }
  | { kind: 'failed'; error: string }
  | { kind: 'malformed' }
  | { kind: 'data_removed' }
  | { kind: 'never' };

interface FakePrediction {
  id: string;
  model: string;
  version: string;
  input: Record<string, unknown>;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled' | 'aborted';
  gets: number;
  outcome: Outcome;
  processingPolls: number;
  files: Buffer[];
  logs: string;
  created_at: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  prefer: string | undefined;
  body: unknown;
}

/** Known models: the input keys each one's schema names (docs/providers/replicate.md lists the sources). */
const SCHEMAS: Record<string, { versions: string[]; keys: string[] }> = {
  'aisha-ai-official/animagine-xl-4.0': {
    versions: ['057e2276ac5dcd8d1575dc37b131f903df9c10c41aed53d47cd7d4f068c19fa5'],
    keys: ['prompt', 'negative_prompt', 'width', 'height', 'steps', 'cfg_scale', 'seed', 'prepend_preprompt'],
  },
  'cjwbw/animagine-xl-3.1': {
    versions: ['6afe2e6b27dad2d6f480b59195c221884b6acc589ff4d05ff0e5fc058690fbb9'],
    keys: [
      'prompt',
      'negative_prompt',
      'width',
      'height',
      'num_inference_steps',
      'guidance_scale',
      'num_outputs',
      'seed',
      'scheduler',
      'style_selector',
      'quality_selector',
    ],
  },
  // Official model: no public versions, created through /models/{owner}/{name}/predictions.
  'black-forest-labs/flux-schnell': {
    versions: [],
    keys: [
      'prompt',
      'aspect_ratio',
      'num_outputs',
      'num_inference_steps',
      'seed',
      'output_format',
      'output_quality',
      'go_fast',
      'megapixels',
      'disable_safety_checker',
    ],
  },
};

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

const problem = (res: ServerResponse, status: number, detail: string, headers: Record<string, string> = {}) =>
  json(res, status, { status, detail }, headers);

const header = (req: IncomingMessage, name: string): string | undefined => [req.headers[name]].flat()[0];

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface ReplicateFake {
  url: string;
  requests: RecordedRequest[];
  /** How many predictions were created (accepted creates only). */
  creates: number;
  cancels: string[];
  predictions: Map<string, FakePrediction>;
  /** The outcome of predictions created from now on. */
  outcome: Outcome;
  /** GETs answered `processing` before a prediction ends (after one `starting`). */
  processingPolls: number;
  /** A create with Prefer: wait answers the finished prediction (the model was fast). */
  finishWithinWait: boolean;
  /** Output as a bare string (models whose output schema is one URI) instead of a list. */
  outputAsString: boolean;
  /** Output files inlined as data: URIs. */
  outputAsDataUri: boolean;
  format: 'png' | 'webp';
  /** Answer the next request matching `path` (default: any create) with this error. */
  failNext(status: number, options?: { retryAfter?: string; detail?: string; path?: RegExp; times?: number }): void;
  /** Make a prediction ended or removed on the Replicate side, as between a worker's death and a rescue. */
  forget(id: string): void;
  close(): Promise<void>;
}

export async function startReplicateFake(options: { tokens?: string[] } = {}): Promise<ReplicateFake> {
  const tokens = new Set(options.tokens ?? ['r8_fake_token_0000000000000000000000000000']);
  const failures: Array<{ status: number; retryAfter?: string; detail?: string; path: RegExp; times: number }> = [];

  const fake: ReplicateFake = {
    url: '',
    requests: [],
    creates: 0,
    cancels: [],
    predictions: new Map(),
    outcome: { kind: 'succeeded' },
    processingPolls: 2,
    finishWithinWait: false,
    outputAsString: false,
    outputAsDataUri: false,
    format: 'png',
    failNext(status, opts = {}) {
      failures.push({
        status,
        retryAfter: opts.retryAfter,
        detail: opts.detail,
        path: opts.path ?? /predictions$/,
        times: opts.times ?? 1,
      });
    },
    forget(id) {
      fake.predictions.delete(id);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const view = (p: FakePrediction) => {
    const base = `${fake.url}/v1/predictions/${p.id}`;
    const done = p.status === 'succeeded';
    const removed = p.outcome.kind === 'data_removed' && done;
    const urls = p.files.map((_, index) => `${fake.url}/files/${p.id}/out-${index}.${fake.format}`);
    const dataUris = p.files.map((file) => `data:image/${fake.format};base64,${file.toString('base64')}`);
    const list = fake.outputAsDataUri ? dataUris : urls;
    let output: unknown = null;
    if (done && !removed)
      output = p.outcome.kind === 'malformed' ? { images: 42 } : fake.outputAsString ? list[0] : list;
    const terminal = ['succeeded', 'failed', 'canceled', 'aborted'].includes(p.status);
    return {
      id: p.id,
      model: p.model,
      version: p.version,
      input: removed ? {} : p.input,
      logs: p.logs,
      output,
      data_removed: removed,
      error: p.status === 'failed' && p.outcome.kind === 'failed' ? p.outcome.error : null,
      status: p.status,
      source: 'api',
      created_at: p.created_at,
      ...(terminal ? { completed_at: new Date().toISOString(), metrics: { predict_time: 1.25, total_time: 1.5 } } : {}),
      urls: { get: base, cancel: `${base}/cancel`, web: `https://replicate.com/p/${p.id}` },
    };
  };

  /** The next state of a prediction, one step per GET: starting → processing ×N → terminal. */
  const advance = (p: FakePrediction) => {
    if (p.status !== 'starting' && p.status !== 'processing') return;
    p.gets += 1;
    if (p.gets <= p.processingPolls || p.outcome.kind === 'never') {
      p.status = 'processing';
      const pct = Math.min(99, Math.round((p.gets / (p.processingPolls + 1)) * 100));
      p.logs += `Using seed: ${String(p.input.seed)}\n${String(pct).padStart(3)}%|█████     | ${p.gets}/${p.processingPolls + 1} [00:01<00:01, 6.10it/s]\n`;
      return;
    }
    finish(p);
  };

  const finish = (p: FakePrediction) => {
    p.status = p.outcome.kind === 'failed' ? 'failed' : 'succeeded';
    if (p.status === 'succeeded') p.logs += '100%|██████████| done\n';
  };

  const makeFiles = async (input: Record<string, unknown>): Promise<Buffer[]> => {
    const count = typeof input.num_outputs === 'number' ? input.num_outputs : 1;
    const width = typeof input.width === 'number' ? input.width : 64;
    const height = typeof input.height === 'number' ? input.height : 64;
    return Promise.all(
      Array.from({ length: count }, (_, index) => {
        const image = sharp({
          create: { width, height, channels: 3, background: { r: 200, g: 40 * index, b: 90 } },
        });
        return (fake.format === 'webp' ? image.webp() : image.png()).toBuffer();
      }),
    );
  };

  async function create(req: IncomingMessage, res: ServerResponse, modelName: string | undefined, body: unknown) {
    const payload = body as { version?: unknown; input?: unknown } | null;
    if (typeof payload !== 'object' || payload === null) return problem(res, 400, 'Request body must be a JSON object');
    let name = modelName;
    let version = 'hidden';
    if (name === undefined) {
      if (typeof payload.version !== 'string') return problem(res, 422, '- version: Field required');
      const [ref, hash] = payload.version.includes(':') ? payload.version.split(':') : [undefined, payload.version];
      name = Object.keys(SCHEMAS).find((key) => SCHEMAS[key]!.versions.includes(hash!));
      if (!name || (ref !== undefined && ref !== name)) {
        return problem(res, 422, `Invalid version or not permitted: ${payload.version}`);
      }
      version = hash!;
    } else if (payload.version !== undefined) {
      return problem(res, 422, 'version is not allowed when creating a prediction of a model');
    }
    const schema = SCHEMAS[name];
    if (!schema) return problem(res, 404, 'The requested resource could not be found.');
    const input = payload.input as Record<string, unknown> | undefined;
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      return problem(res, 422, '- input: Field required');
    }
    if (typeof input.prompt !== 'string') return problem(res, 422, '- input.prompt: Field required');
    const unknown = Object.keys(input).filter((key) => !schema.keys.includes(key));
    if (unknown.length > 0) return problem(res, 422, `- input: Additional property ${unknown[0]} is not allowed`);

    const prefer = header(req, 'prefer');
    if (prefer !== undefined && !/^wait(=([1-9]|[1-5]\d|60))?$/.test(prefer)) {
      return problem(res, 400, `Invalid Prefer header: ${prefer}`);
    }
    fake.creates += 1;
    const prediction: FakePrediction = {
      id: randomBytes(13).toString('hex').slice(0, 26),
      model: name,
      version,
      input,
      status: 'starting',
      gets: 0,
      outcome: fake.outcome,
      processingPolls: fake.processingPolls,
      files: await makeFiles(input),
      logs: '',
      created_at: new Date().toISOString(),
    };
    fake.predictions.set(prediction.id, prediction);
    if (prefer !== undefined && fake.finishWithinWait && prediction.outcome.kind !== 'never') finish(prediction);
    json(res, 201, view(prediction), { location: `${fake.url}/v1/predictions/${prediction.id}` });
  }

  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      const text = await readBody(req);
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        return problem(res, 400, 'Request body is not valid JSON');
      }
      fake.requests.push({
        method: req.method ?? '',
        path,
        authorization: req.headers.authorization,
        prefer: header(req, 'prefer'),
        body,
      });

      const file = /^\/files\/([^/]+)\/out-(\d+)\.(png|webp)$/.exec(path);
      if (file && req.method === 'GET') {
        // Like replicate.delivery: no credential needed, and gone once the data is removed.
        const p = fake.predictions.get(file[1]!);
        const bytes = p?.files[Number(file[2])];
        if (!p || !bytes || p.outcome.kind === 'data_removed') return problem(res, 404, 'Not found');
        res.writeHead(200, { 'content-type': `image/${file[3]}`, 'content-length': bytes.length });
        return res.end(bytes);
      }

      // Both schemes are accepted: `Bearer` (current) and `Token` (the older one).
      const auth = /^(Bearer|Token) (.+)$/.exec(req.headers.authorization ?? '');
      if (!auth || !tokens.has(auth[2]!)) {
        return problem(res, 401, 'You did not pass a valid authentication token');
      }
      const failure = failures.find((f) => f.path.test(path));
      if (failure) {
        if (--failure.times <= 0) failures.splice(failures.indexOf(failure), 1);
        const detail =
          failure.detail ??
          (failure.status === 429 ? 'Request was throttled. Your rate limit resets in ~30s.' : 'Internal server error');
        return problem(res, failure.status, detail, failure.retryAfter ? { 'retry-after': failure.retryAfter } : {});
      }

      const model = /^\/v1\/models\/([^/]+)\/([^/]+)\/predictions$/.exec(path);
      if (model && req.method === 'POST') return await create(req, res, `${model[1]}/${model[2]}`, body);
      if (path === '/v1/predictions' && req.method === 'POST') return await create(req, res, undefined, body);
      const one = /^\/v1\/predictions\/([^/]+)(\/cancel)?$/.exec(path);
      if (one) {
        const p = fake.predictions.get(one[1]!);
        if (!p) return problem(res, 404, 'The requested resource could not be found.');
        if (one[2] && req.method === 'POST') {
          fake.cancels.push(p.id);
          if (p.status === 'starting' || p.status === 'processing') p.status = 'canceled';
          return json(res, 200, view(p));
        }
        if (!one[2] && req.method === 'GET') {
          advance(p);
          return json(res, 200, view(p));
        }
      }
      return problem(res, 404, 'The requested resource could not be found.');
    })().catch((error: unknown) => {
      if (!res.headersSent) problem(res, 500, `fake error: ${String(error)}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
