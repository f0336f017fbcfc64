import type { Logger } from 'pino';
import type { ClaimedTask, FailBody, SucceedBody } from '../../api/schemas/worker.js';
import type { Credential, GeneratedImage, TaskInput } from '../../providers/types.js';
import type { StoredImage } from '../../tasks/attempt.js';
import type { Lease } from '../../tasks/rows.js';
import { taskInputOf, type AttemptQueue, type FailureReport } from '../run-attempt.js';
import { LeaseLost, type WorkerApiClient } from './client.js';
import type { LocalCredentials } from './local-credentials.js';

/** A claimed task as the remote worker holds it. */
export type RemoteTask = ClaimedTask;

const attemptPath = (taskId: string, what: string) => `/v1/worker/tasks/${taskId}/${what}`;

/** Stored error texts are bounded by the API; the worker's log keeps the whole. */
const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/**
 * The remote worker's queue: Easel's worker API. The same attempt logic as a local worker runs
 * against it (run-attempt.ts); what differs is only where things go. The outcome's decision
 * (retry, move on, fail, hand back) is made by the server from the classified report, with the
 * same code a local worker's database queue uses.
 */
export function httpQueue(
  client: WorkerApiClient,
  credentials: LocalCredentials,
  log: Logger,
  /** An upload found the lease gone: the worker aborts that attempt as `lease_lost`. */
  onLeaseLost: (taskId: string) => void,
): AttemptQueue<RemoteTask> {
  /** True when the call was made; false when the lease is gone. */
  const fenced = async (call: () => Promise<unknown>): Promise<boolean> => {
    try {
      await call();
      return true;
    } catch (error) {
      if (error instanceof LeaseLost) return false;
      throw error;
    }
  };
  return {
    input: async (task): Promise<TaskInput> => {
      const image = task.input_image;
      return taskInputOf(
        task,
        image
          ? {
              data: Buffer.from(image.data_base64, 'base64'),
              contentType: image.content_type,
              width: image.width,
              height: image.height,
            }
          : undefined,
      );
    },
    credential: async (_task, pool): Promise<Credential> => credentials.next(pool),
    // Progress is a hint: one try; the next report (or the outcome) supersedes a lost one.
    progress: (lease, stage, pct, preview) =>
      fenced(() =>
        client.json(
          attemptPath(lease.taskId, 'progress'),
          {
            lease_token: lease.token,
            stage,
            progress: pct,
            ...(preview
              ? { preview: { content_type: preview.contentType, data_base64: preview.data.toString('base64') } }
              : {}),
          },
          { retry: false },
        ),
      ),
    saveProviderRef: (lease, ref) =>
      fenced(() =>
        client.json(attemptPath(lease.taskId, 'provider-ref'), { lease_token: lease.token, provider_ref: ref }),
      ),
    storeImages: async (task, lease, images) => {
      // One by one: a GPU box's uplink is the bottleneck, and order keeps the log readable.
      const stored: StoredImage[] = [];
      try {
        for (const [index, image] of images.entries()) stored.push(await upload(client, task, lease, index, image));
      } catch (error) {
        if (error instanceof LeaseLost) onLeaseLost(task.id);
        throw error;
      }
      return stored;
    },
    succeed: async (task, lease, stored, seconds) => {
      const body: SucceedBody = {
        lease_token: lease.token,
        predict_time_seconds: seconds,
        images: stored.map((image) => ({
          index: image.index,
          content_type: image.content_type as SucceedBody['images'][number]['content_type'],
          seed: image.seed,
        })),
      };
      if (!(await fenced(() => client.json(attemptPath(task.id, 'succeed'), body)))) {
        log.warn({ task: task.id }, 'attempt finished after losing its lease; result discarded');
      }
    },
    fail: async (task, lease, report, seconds) => {
      if (report.why === 'lease_lost') {
        log.warn({ task: task.id }, 'attempt lost its lease; aborted without recording anything');
        return;
      }
      if (!(await fenced(() => client.json(attemptPath(task.id, 'fail'), failBody(lease, report, seconds))))) {
        log.warn({ task: task.id }, 'the lease was gone when the attempt ended; nothing recorded');
      }
    },
  };
}

function failBody(lease: Lease, report: FailureReport, seconds: number): FailBody {
  const { failure, why } = report;
  return {
    lease_token: lease.token,
    ...(why === 'cancel' || why === 'timeout' || why === 'shutdown' ? { aborted: why } : {}),
    error_class: failure.errorClass,
    error: { code: cut(failure.error.code, 100), message: cut(failure.error.message, 2000) },
    ...(failure.retryAfterMs !== undefined ? { retry_after_ms: Math.round(failure.retryAfterMs) } : {}),
    predict_time_seconds: seconds,
  };
}

async function upload(
  client: WorkerApiClient,
  task: RemoteTask,
  lease: Lease,
  index: number,
  image: GeneratedImage,
): Promise<StoredImage> {
  const answer = await client.upload<{ storage_key: string; bytes: number; sha256: string }>(
    `${attemptPath(task.id, `images/${index}`)}?lease_token=${encodeURIComponent(lease.token)}`,
    image.contentType,
    image.data,
  );
  return {
    index,
    storage_key: answer.storage_key,
    content_type: image.contentType,
    bytes: answer.bytes,
    width: image.width,
    height: image.height,
    seed: image.seed,
    sha256: answer.sha256,
    // The server finishes uploads (format, thumbnail) at succeed; the worker sends raw bytes.
    thumbnail_bytes: null,
    thumbnail_width: null,
    thumbnail_height: null,
    thumbnail_sha256: null,
  };
}
