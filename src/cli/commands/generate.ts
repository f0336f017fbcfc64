import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { TaskResource } from '../../api/schemas/task.js';
import { isTerminal } from '../../domain/task.js';
import type { OutputFormat } from '../../domain/output-format.js';
import { CliError, type EaselClient } from '../client.js';
import { handleInterrupts } from '../interrupt.js';
import { prepareOutputDir } from '../output-dir.js';

export interface GenerateOptions {
  provider?: string;
  model?: string;
  width?: number;
  height?: number;
  steps?: number;
  n?: number;
  seed?: number;
  priority?: number;
  negative?: string;
  option?: Record<string, unknown>;
  /** img2img input: a file to upload, or a value the API takes as is (data:, http(s)://, upload:). */
  image?: string;
  strength?: number;
  /** output_format and output_quality: how the server stores the images. */
  format?: OutputFormat;
  quality?: number;
  out: string;
  /** Print the finished task as JSON on stdout; everything else goes to stderr. */
  json?: boolean;
}

interface TaskUpdate {
  type: string;
  status: TaskResource['status'];
  stage: string | null;
  progress: number;
}

/**
 * Submit, follow the task live (queue position while it waits, stage and progress while it
 * runs), then save the images. Exits non-zero when the task does not succeed. `--out` is
 * checked before anything is submitted, so an unusable directory costs no work.
 */
export async function generate(client: EaselClient, prompt: string, options: GenerateOptions): Promise<TaskResource> {
  await prepareOutputDir(options.out);
  const image = options.image === undefined ? undefined : await inputImageReference(client, options.image);
  const body = {
    prompt,
    ...(image === undefined ? {} : { kind: 'img2img', image }),
    strength: options.strength,
    negative_prompt: options.negative,
    provider: options.provider,
    model: options.model,
    width: options.width,
    height: options.height,
    steps: options.steps,
    n: options.n,
    seed: options.seed,
    priority: options.priority,
    provider_options: options.option,
    output_format: options.format,
    output_quality: options.quality,
  };
  const { data: submitted } = await client.request<TaskResource>('POST', '/v1/tasks', body);
  const display = createDisplay(submitted);
  const stopHandlingInterrupts = handleInterrupts(client, submitted.id, display.pause);

  // While queued, the stream says nothing; refresh the position and ETA from the task itself.
  const poll = setInterval(() => {
    client
      .request<TaskResource>('GET', `/v1/tasks/${submitted.id}`)
      .then(({ data }) => data.status === 'queued' && display.queued(data))
      .catch(() => undefined);
  }, 1000);
  try {
    await client.stream(`/v1/events?task_id=${submitted.id}`, (message) => {
      if (message.event !== 'task_update') return false;
      const update = JSON.parse(message.data) as TaskUpdate;
      display.update(update);
      return isTerminal(update.status);
    });
  } finally {
    clearInterval(poll);
    stopHandlingInterrupts();
  }
  const { data: task } = await client.request<TaskResource>('GET', `/v1/tasks/${submitted.id}`);
  display.finish(task);
  if (options.json) process.stdout.write(`${JSON.stringify(task, null, 2)}\n`);
  if (task.status !== 'succeeded') {
    throw new CliError(
      `task ${task.id} ${task.status}${task.error ? `: ${task.error.code}: ${task.error.message}` : ''}`,
    );
  }
  // With --json, stdout holds only the task; the saved files are listed on stderr.
  const report = options.json ? process.stderr : process.stdout;
  for (const image of task.images) {
    const extension = image.content_type.split('/')[1] ?? 'bin';
    const file = path.join(options.out, `${task.id}-${image.index}.${extension}`);
    await writeFile(file, await client.download(image.url));
    report.write(`${file}  ${image.width}x${image.height} seed ${image.seed}\n`);
  }
  return task;
}

/** Values the API resolves itself; anything else names a local file. */
const API_IMAGE_REFERENCE = /^(data:|https?:\/\/|upload:)/i;

/** `--image`: a local file is uploaded first (POST /v1/uploads) and named by its upload id. */
async function inputImageReference(client: EaselClient, image: string): Promise<string> {
  if (API_IMAGE_REFERENCE.test(image)) return image;
  let bytes: Buffer;
  try {
    bytes = await readFile(image);
  } catch (error) {
    throw new CliError(`cannot read --image ${image}: ${(error as Error).message}`);
  }
  const upload = await client.upload<{ id: string }>('/v1/uploads', 'image', bytes, path.basename(image));
  return `upload:${upload.id}`;
}

/** A progress bar on a terminal; one line per change everywhere else (logs, CI, pipes). */
function createDisplay(task: TaskResource) {
  const describeQueued = (t: Pick<TaskResource, 'queue_position' | 'eta_seconds'>) =>
    `queued, ${t.queue_position ?? '?'} ahead${t.eta_seconds === null ? '' : `, ~${Math.ceil(t.eta_seconds)}s`}`;
  process.stderr.write(`task ${task.id}\n`);
  if (!process.stderr.isTTY) {
    let last = '';
    const line = (text: string) => {
      if (text !== last) process.stderr.write(`${text}\n`);
      last = text;
    };
    line(describeQueued(task));
    return {
      pause: () => undefined,
      queued: (t: TaskResource) => line(describeQueued(t)),
      update: (u: TaskUpdate) => line(u.status === 'running' ? `running: ${u.stage ?? ''} ${u.progress}%` : u.status),
      finish: (t: TaskResource) => line(t.status),
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: '{bar} {percentage}% | {state}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(100, 0, { state: describeQueued(task) });
  // Paused (by Ctrl-C, to leave the terminal to a message), the bar stays stopped.
  let paused = false;
  return {
    pause: () => {
      paused = true;
      bar.stop();
    },
    queued: (t: TaskResource) => paused || bar.update({ state: describeQueued(t) }),
    update: (u: TaskUpdate) =>
      paused ||
      bar.update(u.status === 'running' ? u.progress : u.status === 'succeeded' ? 100 : 0, {
        state: u.status === 'running' ? `${u.stage ?? 'running'}` : u.status,
      }),
    finish: (t: TaskResource) => {
      if (!paused) {
        bar.update(t.status === 'succeeded' ? 100 : t.progress, { state: t.status });
        bar.stop();
      } else process.stderr.write(`${t.status}\n`);
    },
  };
}
