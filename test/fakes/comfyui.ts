import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * A local ComfyUI (server.py routes, execution as main.py's prompt worker does it): prompts are
 * queued by `number` and executed one at a time, each sampler step a `progress` message and a
 * binary preview frame (4-byte event 1 = PREVIEW_IMAGE, 4-byte image type 1 = JPEG, bytes) sent
 * to the prompt's own client id only, `status` to everyone, history and `/view` once done.
 *
 * Interrupt semantics follow the server: with `prompt_id`, only when that prompt is the running
 * one (current ComfyUI); `legacyInterrupt` makes it ignore the body and stop whatever runs
 * (older ComfyUI), and `legacyPromptIds` makes it ignore a caller-chosen prompt_id.
 *
 * Stricter than ComfyUI where that catches adapter bugs: a `{{…}}` placeholder left in a graph
 * is a 400, and so is a LoadImage of a file nobody uploaded.
 */

export type FakeOutcome =
  | { kind: 'success' }
  | { kind: 'error'; exceptionType: string; message: string }
  /** History says nothing: stays running until interrupted. */
  | { kind: 'hang' };

interface QueueItem {
  number: number;
  id: string;
  graph: Record<string, { class_type: string; inputs: Record<string, unknown> }>;
  extra: { client_id?: string };
  outcome: FakeOutcome;
  interrupted: boolean;
}

interface HistoryRecord {
  prompt: unknown[];
  outputs: Record<string, { images: Array<{ filename: string; subfolder: string; type: string }> }>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: Array<[string, Record<string, unknown>]> };
}

export interface FakeRequest {
  method: string;
  path: string;
  body: unknown;
}

export interface ComfyUIFake {
  url: string;
  requests: FakeRequest[];
  /** Every prompt ever queued, in order. */
  prompts: QueueItem[];
  history: Map<string, HistoryRecord>;
  files: Map<string, Buffer>;
  uploads: Map<string, Buffer>;
  deleted: string[];
  /** Each POST /interrupt: what it asked for and which prompt it actually stopped. */
  interrupts: Array<{ asked: string | undefined; stopped: string | undefined }>;
  checkpoints: string[];
  stepMs: number;
  /** Outcomes handed to the next prompts that start, in order; then success. */
  outcomes: FakeOutcome[];
  legacyInterrupt: boolean;
  legacyPromptIds: boolean;
  refuseWebsocket: boolean;
  /** Takes websocket connections and never answers the upgrade (a proxy that swallows them). */
  hangWebsocket: boolean;
  sendPreviews: boolean;
  /** Time between execution_success and the history entry (task_done). */
  historyLagMs: number;
  /** Delay before every HTTP answer. */
  slowMs: number;
  /** Basic auth `user:pass` the server requires, when set. */
  auth: string | undefined;
  /** The next matching requests fail with `status`; a string `body` is sent as is (malformed JSON). */
  failNext(status: number, options?: { path?: RegExp; times?: number; body?: unknown }): void;
  /** Closes every websocket connection, as a network blip or a server restart would. */
  dropSockets(): void;
  running(): string | undefined;
  close(): Promise<void>;
}

const KNOWN_NODES = new Set([
  'CheckpointLoaderSimple',
  'CLIPTextEncode',
  'EmptyLatentImage',
  'KSampler',
  'VAEDecode',
  'VAEEncode',
  'SaveImage',
  'LoadImage',
  'RepeatLatentBatch',
]);

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startComfyUIFake(): Promise<ComfyUIFake> {
  const pending: QueueItem[] = [];
  let current: QueueItem | undefined;
  let counter = 0;
  let imageCounter = 0;
  const sockets = new Map<string, WebSocket>();
  const failures: Array<{ status: number; path: RegExp; times: number; body: unknown }> = [];
  const previewJpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
    .jpeg()
    .toBuffer();

  const send = (clientId: string | undefined, type: string, data: Record<string, unknown>) => {
    const message = JSON.stringify({ type, data });
    const targets = clientId === undefined ? [...sockets.values()] : [sockets.get(clientId)].filter(Boolean);
    for (const socket of targets) socket!.send(message);
  };
  const status = () =>
    send(undefined, 'status', { status: { exec_info: { queue_remaining: pending.length + (current ? 1 : 0) } } });

  const fake: ComfyUIFake = {
    url: '',
    requests: [],
    prompts: [],
    history: new Map(),
    files: new Map(),
    uploads: new Map(),
    deleted: [],
    interrupts: [],
    checkpoints: ['v1-5-pruned-emaonly.safetensors', 'sd_xl_base_1.0.safetensors'],
    stepMs: 30,
    outcomes: [],
    legacyInterrupt: false,
    legacyPromptIds: false,
    refuseWebsocket: false,
    hangWebsocket: false,
    sendPreviews: true,
    historyLagMs: 0,
    slowMs: 0,
    auth: undefined,
    failNext(status, options = {}) {
      failures.push({ status, path: options.path ?? /.*/, times: options.times ?? 1, body: options.body });
    },
    dropSockets() {
      for (const socket of sockets.values()) socket.terminate();
      sockets.clear();
    },
    running: () => current?.id,
    close: async () => {
      for (const socket of hung) socket.destroy();
      fake.dropSockets();
      sockets.clear();
      stopped = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  let stopped = false;

  const imagesFor = async (item: QueueItem) => {
    const nodes = Object.values(item.graph);
    const latent = nodes.find((node) => node.class_type === 'EmptyLatentImage')?.inputs;
    const load = nodes.find((node) => node.class_type === 'LoadImage')?.inputs;
    const sampler = nodes.find((node) => node.class_type === 'KSampler')?.inputs ?? {};
    let width = Number(latent?.width ?? 64);
    let height = Number(latent?.height ?? 64);
    let batch = Number(latent?.batch_size ?? 1);
    if (load) {
      const meta = await sharp(fake.uploads.get(String(load.image))).metadata();
      width = meta.width ?? 64;
      height = meta.height ?? 64;
      batch = Number(nodes.find((node) => node.class_type === 'RepeatLatentBatch')?.inputs.amount ?? 1);
    }
    const seed = Number(sampler.seed ?? 0);
    const images = [];
    for (let i = 0; i < batch; i++) {
      const filename = `easel_${String(++imageCounter).padStart(5, '0')}_.png`;
      const background = { r: seed % 256, g: (seed >> 8) % 256, b: i * 40 };
      fake.files.set(
        filename,
        await sharp({ create: { width, height, channels: 3, background } })
          .png()
          .toBuffer(),
      );
      images.push({ filename, subfolder: '', type: 'output' });
    }
    return images;
  };

  const finish = (item: QueueItem, record: Omit<HistoryRecord, 'prompt'>) => {
    fake.history.set(item.id, { prompt: [item.number, item.id, item.graph, item.extra, ['9']], ...record });
  };

  const execute = async (item: QueueItem) => {
    const client = item.extra.client_id;
    const messages: Array<[string, Record<string, unknown>]> = [];
    const emit = (type: string, data: Record<string, unknown>) => {
      const full = { ...data, prompt_id: item.id };
      messages.push([type, { ...full, timestamp: Date.now() }]);
      send(client, type, full);
    };
    emit('execution_start', { timestamp: Date.now() });
    emit('execution_cached', { nodes: [] });
    emit('executing', { node: '4', display_node: '4' });
    const steps = Number(Object.values(item.graph).find((n) => n.class_type === 'KSampler')?.inputs.steps ?? 4);
    emit('executing', { node: '3', display_node: '3' });
    for (let step = 1; item.outcome.kind === 'hang' || step <= steps; step++) {
      await sleep(fake.stepMs);
      if (item.interrupted || stopped) {
        emit('execution_interrupted', { node_id: '3', node_type: 'KSampler', executed: ['4'] });
        finish(item, { outputs: {}, status: { status_str: 'error', completed: false, messages } });
        return;
      }
      if (item.outcome.kind === 'error' && step === 2) {
        const { exceptionType, message } = item.outcome;
        emit('execution_error', {
          node_id: '3',
          node_type: 'KSampler',
          executed: ['4'],
          exception_message: message,
          exception_type: exceptionType,
          traceback: ['Traceback (most recent call last):'],
          current_inputs: {},
          current_outputs: {},
        });
        finish(item, { outputs: {}, status: { status_str: 'error', completed: false, messages } });
        return;
      }
      emit('progress', { value: Math.min(step, steps), max: steps, node: '3' });
      const socket = client ? sockets.get(client) : undefined;
      if (fake.sendPreviews && socket) {
        const header = Buffer.alloc(8);
        header.writeUInt32BE(1, 0);
        header.writeUInt32BE(1, 4);
        socket.send(Buffer.concat([header, previewJpeg]));
      }
    }
    emit('executing', { node: '8', display_node: '8' });
    const images = await imagesFor(item);
    emit('executing', { node: '9', display_node: '9' });
    emit('executed', { node: '9', display_node: '9', output: { images } });
    // As main.py: execution_success is sent while the prompt still counts as running; the
    // history entry comes with task_done, then `executing {node: null}`.
    emit('execution_success', { timestamp: Date.now() });
    if (fake.historyLagMs > 0) await sleep(fake.historyLagMs);
    finish(item, { outputs: { '9': { images } }, status: { status_str: 'success', completed: true, messages } });
    send(client, 'executing', { node: null, prompt_id: item.id });
  };

  let working = false;
  const work = async () => {
    if (working) return;
    working = true;
    while (!stopped && pending.length > 0) {
      pending.sort((a, b) => a.number - b.number);
      current = pending.shift()!;
      current.outcome = fake.outcomes.shift() ?? { kind: 'success' };
      status();
      await execute(current);
      current = undefined;
      status();
    }
    working = false;
  };

  const validate = (graph: QueueItem['graph']): Record<string, unknown> | undefined => {
    const nodeErrors: Record<string, unknown> = {};
    for (const [id, node] of Object.entries(graph)) {
      const errors: Array<Record<string, unknown>> = [];
      if (!KNOWN_NODES.has(node.class_type)) {
        return {
          error: {
            type: 'invalid_prompt',
            message: `Cannot execute because node ${node.class_type} does not exist.`,
            details: `Node ID '#${id}'`,
            extra_info: {},
          },
          node_errors: {},
        };
      }
      for (const [input, value] of Object.entries(node.inputs)) {
        if (typeof value === 'string' && value.includes('{{')) {
          errors.push({ type: 'bad_value', message: 'Unfilled placeholder', details: `${input}: ${value}` });
        }
      }
      if (node.class_type === 'CheckpointLoaderSimple' && !fake.checkpoints.includes(String(node.inputs.ckpt_name))) {
        errors.push({
          type: 'value_not_in_list',
          message: 'Value not in list',
          details: `ckpt_name: '${String(node.inputs.ckpt_name)}' not in ${JSON.stringify(fake.checkpoints)}`,
        });
      }
      if (node.class_type === 'LoadImage' && !fake.uploads.has(String(node.inputs.image))) {
        errors.push({
          type: 'custom_validation_failed',
          message: 'Invalid image file',
          details: `image - ${String(node.inputs.image)}`,
        });
      }
      if (errors.length > 0) nodeErrors[id] = { errors, dependent_outputs: ['9'], class_type: node.class_type };
    }
    if (Object.keys(nodeErrors).length === 0) return undefined;
    return {
      error: {
        type: 'prompt_outputs_failed_validation',
        message: 'Prompt outputs failed validation',
        details: '',
        extra_info: {},
      },
      node_errors: nodeErrors,
    };
  };

  const authorized = (request: IncomingMessage) =>
    !fake.auth || request.headers.authorization === `Basic ${Buffer.from(fake.auth).toString('base64')}`;

  const json = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  const queueItem = (item: QueueItem) => [item.number, item.id, item.graph, item.extra, ['9']];

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    const raw = await readBody(request);
    const isJson = (request.headers['content-type'] ?? '').includes('json');
    let body: unknown = undefined;
    if (isJson && raw.length > 0) body = JSON.parse(raw.toString('utf8')) as unknown;
    fake.requests.push({ method: request.method ?? 'GET', path: url.pathname + url.search, body });
    if (fake.slowMs > 0) await sleep(fake.slowMs);
    if (!authorized(request)) {
      response.writeHead(401, { 'www-authenticate': 'Basic' });
      return response.end('Unauthorized');
    }
    const failure = failures.find((f) => f.path.test(url.pathname));
    if (failure) {
      if (--failure.times <= 0) failures.splice(failures.indexOf(failure), 1);
      if (typeof failure.body === 'string') {
        // A malformed answer: the text as it is, under a JSON content type.
        response.writeHead(failure.status, { 'content-type': 'application/json' });
        return response.end(failure.body);
      }
      return json(response, failure.status, failure.body ?? { error: 'fake failure' });
    }
    const route = `${request.method} ${url.pathname.replace(/^\/api(?=\/)/, '')}`;
    if (route === 'POST /prompt') {
      const input = body as { prompt?: QueueItem['graph']; client_id?: string; prompt_id?: string };
      if (!input?.prompt) {
        return json(response, 400, {
          error: { type: 'no_prompt', message: 'No prompt provided', details: '', extra_info: {} },
          node_errors: {},
        });
      }
      const refusal = validate(input.prompt);
      if (refusal) return json(response, 400, refusal);
      const id = !fake.legacyPromptIds && input.prompt_id ? String(input.prompt_id) : randomUUID();
      const item: QueueItem = {
        number: counter++,
        id,
        graph: input.prompt,
        extra: input.client_id ? { client_id: input.client_id } : {},
        outcome: { kind: 'success' },
        interrupted: false,
      };
      pending.push(item);
      fake.prompts.push(item);
      status();
      void work();
      return json(response, 200, { prompt_id: id, number: item.number, node_errors: {} });
    }
    if (route === 'GET /queue') {
      return json(response, 200, {
        queue_running: current ? [queueItem(current)] : [],
        queue_pending: pending.map(queueItem),
      });
    }
    if (route === 'POST /queue') {
      const input = body as { delete?: string[]; clear?: boolean };
      for (const id of input.delete ?? []) {
        const index = pending.findIndex((item) => item.id === id);
        if (index >= 0) {
          pending.splice(index, 1);
          fake.deleted.push(id);
        }
      }
      status();
      response.writeHead(200);
      return response.end();
    }
    if (route === 'POST /interrupt') {
      const asked = (body as { prompt_id?: string } | undefined)?.prompt_id;
      const hit = current && (fake.legacyInterrupt || !asked || asked === current.id) ? current : undefined;
      if (hit) hit.interrupted = true;
      fake.interrupts.push({ asked, stopped: hit?.id });
      response.writeHead(200);
      return response.end();
    }
    const history = /^\/history\/([^/]+)$/.exec(url.pathname);
    if (request.method === 'GET' && history) {
      const id = decodeURIComponent(history[1]!);
      const record = fake.history.get(id);
      return json(response, 200, record ? { [id]: record } : {});
    }
    if (route === 'POST /upload/image') {
      const form = await new Response(raw, {
        headers: { 'content-type': request.headers['content-type'] ?? '' },
      }).formData();
      const file = form.get('image');
      if (!(file instanceof Blob)) return json(response, 400, { error: 'no image' });
      const name = (file as File).name || 'image.png';
      fake.uploads.set(name, Buffer.from(await file.arrayBuffer()));
      return json(response, 200, { name, subfolder: '', type: 'input' });
    }
    if (route === 'GET /view') {
      const filename = url.searchParams.get('filename') ?? '';
      if (filename.startsWith('/') || filename.includes('..')) return json(response, 400, {});
      const file = url.searchParams.get('type') === 'input' ? fake.uploads.get(filename) : fake.files.get(filename);
      if (!file) {
        response.writeHead(404);
        return response.end();
      }
      response.writeHead(200, { 'content-type': 'image/png' });
      return response.end(file);
    }
    json(response, 404, { error: 'not found' });
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) json(response, 500, { error: String(error) });
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  const hung: Duplex[] = [];
  server.on('upgrade', (request, socket, head) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    if (fake.hangWebsocket) {
      hung.push(socket);
      return;
    }
    if (url.pathname !== '/ws' || fake.refuseWebsocket || !authorized(request)) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const clientId = url.searchParams.get('clientId') ?? randomUUID();
      // As ComfyUI: one socket per client id, the newest wins.
      sockets.set(clientId, ws);
      ws.on('close', () => {
        if (sockets.get(clientId) === ws) sockets.delete(clientId);
      });
      ws.send(
        JSON.stringify({
          type: 'status',
          data: { status: { exec_info: { queue_remaining: pending.length + (current ? 1 : 0) } }, sid: clientId },
        }),
      );
      if (current && current.extra.client_id === clientId) {
        ws.send(JSON.stringify({ type: 'executing', data: { node: '3', display_node: '3', prompt_id: current.id } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
