import type { TaskEvent } from '../events/event-log.js';
import { formatCursor } from '../events/cursor.js';
import type { TaskImageRow } from '../tasks/rows.js';
import type { TaskView } from '../tasks/service.js';
import { toCredits } from '../billing/money.js';
import { isTerminal } from '../domain/task.js';
import type { TaskResource } from './schemas/task.js';

export const inputImageUrl = (baseUrl: string, taskId: string): string => `${baseUrl}/v1/tasks/${taskId}/input-image`;

export const imageUrl = (baseUrl: string, taskId: string, index: number): string =>
  `${baseUrl}/v1/tasks/${taskId}/images/${index}`;

export const thumbnailUrl = (baseUrl: string, taskId: string, index: number): string =>
  `${imageUrl(baseUrl, taskId, index)}/thumbnail`;

type PublicImage = Omit<TaskImageRow, 'task_id' | 'storage_key' | 'created_at'>;

const toPublicImage = (baseUrl: string, taskId: string, image: PublicImage) => ({
  index: image.index,
  url: imageUrl(baseUrl, taskId, image.index),
  content_type: image.content_type,
  bytes: image.bytes,
  width: image.width,
  height: image.height,
  seed: image.seed,
  sha256: image.sha256,
  // Events recorded before migration 0015 carry no thumbnail fields at all: undefined, not null.
  thumbnail_url: image.thumbnail_sha256 ? thumbnailUrl(baseUrl, taskId, image.index) : null,
});

/** Seconds to the millisecond: finer digits are measurement noise, not information. */
const toMilliseconds = (seconds: number | null): number | null =>
  seconds === null ? null : Math.round(seconds * 1000) / 1000;

/** An estimate is shown in whole seconds, rounded up: better early than later than promised. */
const toWholeSeconds = (seconds: number | null): number | null => (seconds === null ? null : Math.ceil(seconds));

/** The task as the API shows it. `baseUrl` is EASEL_PUBLIC_URL, or '' for relative links. */
export function toTaskResource(view: TaskView, baseUrl: string): TaskResource {
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
      url: inputImageUrl(baseUrl, task.id),
      content_type: task.input_image.content_type,
      bytes: task.input_image.bytes,
      width: task.input_image.width,
      height: task.input_image.height,
      sha256: task.input_image.sha256,
    },
    provider_options: task.provider_options,
    stage: task.stage,
    progress: task.progress,
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
    images: view.images.map((image) => toPublicImage(baseUrl, task.id, image)),
    predict_time: toMilliseconds(task.predict_time),
    cost: view.charges && isTerminal(task.status) ? toCredits(view.charges.capturedMicro) : null,
    hold: view.charges?.openMicro != null ? toCredits(view.charges.openMicro) : null,
    created_at: task.created_at.toISOString(),
    started_at: task.started_at?.toISOString() ?? null,
    finished_at: task.finished_at?.toISOString() ?? null,
  };
}

/** The `task_update` SSE payload: what changed, when, and the task's state after it. */
export function toTaskUpdate(event: TaskEvent, baseUrl: string) {
  const { images, ...state } = event.data as { images?: PublicImage[] } & Record<string, unknown>;
  return {
    event_id: formatCursor(event.cursor),
    type: event.type,
    task_id: event.taskId,
    at: event.at.toISOString(),
    ...state,
    ...(images ? { images: images.map((image) => toPublicImage(baseUrl, event.taskId, image)) } : {}),
  };
}
