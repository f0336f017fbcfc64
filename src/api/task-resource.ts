import type { TaskEvent } from '../events/event-log.js';
import { formatCursor } from '../events/cursor.js';
import type { TaskImageRow } from '../tasks/rows.js';
import type { TaskView } from '../tasks/service.js';
import { toCredits } from '../billing/money.js';
import { isTerminal } from '../domain/task.js';
import type { TaskResource } from './schemas/task.js';
import type { Links } from './image-delivery.js';

export const inputImagePath = (taskId: string): string => `/v1/tasks/${taskId}/input-image`;

/** Where a running task's latest preview is; `v` changes with each new preview so clients can tell. */
export const previewPath = (taskId: string, version: number): string => `/v1/tasks/${taskId}/preview?v=${version}`;

export const imagePath = (taskId: string, index: number): string => `/v1/tasks/${taskId}/images/${index}`;

export const thumbnailPath = (taskId: string, index: number): string => `${imagePath(taskId, index)}/thumbnail`;

/** An event's images were stored moments before: no `expired_at` yet (and a string once in JSON). */
type PublicImage = Omit<TaskImageRow, 'task_id' | 'storage_key' | 'created_at' | 'expired_at'> & {
  expired_at?: Date | string | null;
};

/**
 * An expired image keeps its url: a client that stored it gets a clear 410 IMAGE_EXPIRED there
 * rather than a link that vanished from the task.
 */
const toPublicImage = (links: Links, taskId: string, image: PublicImage) => ({
  index: image.index,
  url: links.base + imagePath(taskId, image.index),
  signed_url: links.signed(imagePath(taskId, image.index)),
  content_type: image.content_type,
  bytes: image.bytes,
  width: image.width,
  height: image.height,
  seed: image.seed,
  sha256: image.sha256,
  expired_at: image.expired_at ? new Date(image.expired_at).toISOString() : null,
  // Events recorded before migration 0015 carry no thumbnail fields at all: undefined, not null.
  thumbnail_url: image.thumbnail_sha256 ? links.base + thumbnailPath(taskId, image.index) : null,
  thumbnail_signed_url: image.thumbnail_sha256 ? links.signed(thumbnailPath(taskId, image.index)) : null,
});

/** Seconds to the millisecond: finer digits are measurement noise, not information. */
const toMilliseconds = (seconds: number | null): number | null =>
  seconds === null ? null : Math.round(seconds * 1000) / 1000;

/** An estimate is shown in whole seconds, rounded up: better early than later than promised. */
const toWholeSeconds = (seconds: number | null): number | null => (seconds === null ? null : Math.ceil(seconds));

/** The task as the API shows it, with absolute image links (src/api/image-delivery.ts). */
export function toTaskResource(view: TaskView, links: Links): TaskResource {
  const { task } = view;
  return {
    id: task.id,
    status: task.status,
    kind: task.kind,
    provider: task.provider,
    model: task.model,
    route: task.route && {
      name: task.route.name,
      target: task.route.index,
      targets: task.route.targets.map(({ provider, model }) => ({ provider, model })),
      fallbacks: task.route.fallbacks,
    },
    priority: task.priority,
    params: task.params,
    input_image: task.input_image && {
      url: links.base + inputImagePath(task.id),
      signed_url: links.signed(inputImagePath(task.id)),
      content_type: task.input_image.content_type,
      bytes: task.input_image.bytes,
      width: task.input_image.width,
      height: task.input_image.height,
      sha256: task.input_image.sha256,
    },
    provider_options: task.provider_options,
    stage: task.stage,
    progress: task.progress,
    preview_url:
      task.status === 'running' && task.preview_version !== null
        ? links.base + previewPath(task.id, task.preview_version)
        : null,
    attempt: task.attempt,
    max_attempts: task.max_attempts,
    queue_position: view.queuePosition,
    eta_seconds: toWholeSeconds(view.etaSeconds),
    waiting_for: view.waitingFor && {
      reason: view.waitingFor.reason,
      available_again_at: view.waitingFor.availableAgainAt?.toISOString() ?? null,
    },
    cancel_requested: task.cancel_requested_at !== null,
    error: task.error,
    images: view.images.map((image) => toPublicImage(links, task.id, image)),
    predict_time: toMilliseconds(task.predict_time),
    cost: view.charges && isTerminal(task.status) ? toCredits(view.charges.capturedMicro) : null,
    hold: view.charges?.openMicro != null ? toCredits(view.charges.openMicro) : null,
    created_at: task.created_at.toISOString(),
    started_at: task.started_at?.toISOString() ?? null,
    finished_at: task.finished_at?.toISOString() ?? null,
  };
}

/** The `task_update` SSE payload: what changed, when, and the task's state after it. */
export function toTaskUpdate(event: TaskEvent, links: Links) {
  const {
    images,
    preview_version: previewVersion,
    ...state
  } = event.data as { images?: PublicImage[]; preview_version?: number | null } & Record<string, unknown>;
  return {
    event_id: formatCursor(event.cursor),
    type: event.type,
    task_id: event.taskId,
    at: event.at.toISOString(),
    ...state,
    // Progress events say which preview is current (migration 0018); null while there is none.
    ...(previewVersion !== undefined
      ? { preview_url: previewVersion === null ? null : links.base + previewPath(event.taskId, previewVersion) }
      : {}),
    ...(images ? { images: images.map((image) => toPublicImage(links, event.taskId, image)) } : {}),
  };
}
