import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A fake Hugging Face router serving `POST /hf-inference/models/{owner}/{name}` the way
 * huggingface.js calls it (`packages/inference/src/providers/hf-inference.ts`: the body is the
 * task args as given, `{inputs, parameters}`; text-to-image answers image bytes). It refuses what
 * the router refuses: a wrong token (401), parameters outside the text-to-image spec (400, names
 * from `packages/tasks/src/tasks/text-to-image/spec/input.json` and huggingface_hub's generated
 * `TextToImageParameters`), a model it does not serve (404).
 */
export interface ScriptedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HfRequest {
  model: string;
  token: string | undefined;
  body: { inputs?: unknown; parameters?: Record<string, unknown> } | undefined;
}

const PARAMETERS = new Set([
  'negative_prompt',
  'width',
  'height',
  'num_inference_steps',
  'guidance_scale',
  'seed',
  'scheduler',
]);

export interface HuggingFaceFake {
  url: string;
  requests: HfRequest[];
  /** Connections the client closed before the answer (an abort reached the server). */
  aborted: number;
  /** The next answers, in order, instead of an image. */
  failNext(status: number, options?: { body?: unknown; retryAfter?: string }): void;
  /** The next answers are "model is loading" 503s with this estimated_time (seconds). */
  loading(times: number, estimatedTime: number): void;
  /** Answer this much later (ms). */
  slow(ms: number): void;
  /** This token's next `times` requests get 429 with `Retry-After: retryAfter` (seconds). */
  throttle(token: string, times: number, retryAfter: number): void;
  /** Every answer sent, in order, with the token it was for. */
  answers: Array<{ token: string | undefined; status: number }>;
  /** The most requests of one token the fake was answering at once. */
  maxInFlight: Map<string, number>;
  /** The next answer is 200 with bytes that are no image. */
  malformedNext(): void;
  close(): Promise<void>;
}

export async function startHuggingFaceFake(
  options: { tokens: string[]; models?: string[] } = { tokens: ['hf_a'] },
): Promise<HuggingFaceFake> {
  const script: ScriptedAnswer[] = [];
  const requests: HfRequest[] = [];
  let delayMs = 0;
  let aborted = 0;
  const throttled = new Map<string, { times: number; retryAfter: number }>();
  const answers: HuggingFaceFake['answers'] = [];
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  const models = options.models ? new Set(options.models) : undefined;

  const send = (res: http.ServerResponse, answer: ScriptedAnswer, token?: string) => {
    answers.push({ token, status: answer.status });
    const isBuffer = Buffer.isBuffer(answer.body);
    res.writeHead(answer.status, {
      'content-type': isBuffer ? 'image/png' : 'application/json',
      ...answer.headers,
    });
    res.end(isBuffer ? answer.body : JSON.stringify(answer.body ?? {}));
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const match = /^\/hf-inference\/models\/([^/]+\/[^/]+)$/.exec(req.url ?? '');
        if (req.method !== 'POST' || !match) return send(res, { status: 404, body: { error: 'Not Found' } });
        const model = decodeURIComponent(match[1]!);
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        let body: HfRequest['body'];
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HfRequest['body'];
        } catch {
          body = undefined;
        }
        requests.push({ model, token, body });
        if (token) {
          const now = (inFlight.get(token) ?? 0) + 1;
          inFlight.set(token, now);
          maxInFlight.set(token, Math.max(now, maxInFlight.get(token) ?? 0));
          res.on('close', () => inFlight.set(token, inFlight.get(token)! - 1));
        }
        if (delayMs > 0) {
          const closed = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), delayMs);
            res.on('close', () => {
              clearTimeout(timer);
              resolve(!res.writableFinished);
            });
          });
          if (closed) {
            aborted++;
            return;
          }
        }
        if (!token || !options.tokens.includes(token)) {
          return send(res, { status: 401, body: { error: 'Invalid credentials in Authorization header' } });
        }
        const throttle = throttled.get(token);
        if (throttle && throttle.times > 0) {
          throttle.times--;
          return send(
            res,
            {
              status: 429,
              body: { error: 'Rate limit reached. Please retry later.' },
              headers: { 'retry-after': String(throttle.retryAfter) },
            },
            token,
          );
        }
        const scripted = script.shift();
        if (scripted) return send(res, scripted, token);
        if (models && !models.has(model))
          return send(res, { status: 404, body: { error: `Model ${model} does not exist` } });
        const problem = validate(body, req.headers['content-type']);
        if (problem) return send(res, { status: 400, body: { error: problem } });
        const { width = 512, height = 512, seed = 0 } = body!.parameters as Record<string, number>;
        const png = await sharp({
          create: { width, height, channels: 3, background: { r: seed % 256, g: 100, b: 200 } },
        })
          .png()
          .toBuffer();
        return send(res, { status: 200, body: png }, token);
      })().catch((error: unknown) => send(res, { status: 500, body: { error: String(error) } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get aborted() {
      return aborted;
    },
    failNext(status, opts = {}) {
      script.push({
        status,
        body: opts.body ?? { error: `fake failure ${status}` },
        headers: opts.retryAfter ? { 'retry-after': opts.retryAfter } : {},
      });
    },
    loading(times, estimatedTime) {
      for (let i = 0; i < times; i++) {
        script.push({
          status: 503,
          body: { error: 'Model black-forest-labs/FLUX.1-schnell is currently loading', estimated_time: estimatedTime },
        });
      }
    },
    slow(ms) {
      delayMs = ms;
    },
    throttle(token, times, retryAfter) {
      throttled.set(token, { times, retryAfter });
    },
    answers,
    maxInFlight,
    malformedNext() {
      script.push({ status: 200, body: Buffer.from('this is not a png') });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function validate(body: HfRequest['body'], contentType: string | undefined): string | undefined {
  if (!contentType?.startsWith('application/json')) return 'expected a JSON body';
  if (!body || typeof body.inputs !== 'string' || body.inputs === '') return 'inputs: field required (a prompt)';
  const parameters = body.parameters ?? {};
  for (const key of Object.keys(parameters)) {
    if (!PARAMETERS.has(key)) return `parameters: unknown field ${key}`;
  }
  for (const key of ['width', 'height', 'num_inference_steps', 'seed']) {
    if (key in parameters && !Number.isInteger(parameters[key])) return `parameters.${key} must be an integer`;
  }
  return undefined;
}
