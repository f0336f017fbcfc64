/** Task vocabulary shared by the queue, the worker, the API and the CLI. Pure: no I/O. */

import type { OutputFormat } from './output-format.js';

export const TaskStatus = {
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'canceled'];
export const isTerminal = (status: TaskStatus): boolean => TERMINAL_STATUSES.includes(status);

/** What happened to a task; one row in task_events each, one SSE `task_update` each. */
export const TaskEventType = {
  queued: 'task:queued',
  running: 'task:running',
  progress: 'task:progress',
  retrying: 'task:retrying',
  succeeded: 'task:succeeded',
  failed: 'task:failed',
  canceled: 'task:canceled',
  cancelRequested: 'task:cancel_requested',
} as const;
export type TaskEventType = (typeof TaskEventType)[keyof typeof TaskEventType];

export const LOCAL_USER_ID = '00000000-0000-0000-0000-000000000001';

/** The parameters stored in `tasks.params`, in API (snake_case) form. */
export interface TaskParams {
  prompt: string;
  negative_prompt: string | null;
  width: number;
  height: number;
  steps: number;
  guidance: number;
  n: number;
  seed: number;
  /** img2img only: how far the result may move from the input, 0–1. */
  strength?: number;
  /** The format the images are stored in; absent: the format the provider returned. */
  output_format?: OutputFormat;
  /** JPEG and WebP quality, 1–100; present exactly when output_format is one of them. */
  output_quality?: number;
}

export interface TaskError {
  code: string;
  message: string;
}
