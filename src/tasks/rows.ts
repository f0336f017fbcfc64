import type { TaskError, TaskParams, TaskStatus } from '../domain/task.js';
import type { StoredInputImage } from '../inputs/uploads.js';
import type { TaskKind } from '../providers/types.js';
import type { TaskRoute } from '../routing/task-route.js';

/** A `tasks` row as the driver returns it. */
export interface TaskRow {
  id: string;
  user_id: string;
  kind: TaskKind;
  provider: string;
  model: string;
  params: TaskParams;
  provider_options: Record<string, unknown>;
  priority: number;
  rank: number;
  vtime: number;
  status: TaskStatus;
  stage: string | null;
  progress: number;
  attempt: number;
  max_attempts: number;
  rescues: number;
  run_after: Date;
  worker_id: string | null;
  lease_token: string | null;
  provider_ref: string | null;
  /** The pool credential of the current (or last) attempt; null for providers without a pool. */
  credential_id: string | null;
  /** Set for a task submitted to a named route: its targets, where it is, what failed. */
  route: TaskRoute | null;
  cancel_requested_at: Date | null;
  idempotency_key: string | null;
  request_hash: string | null;
  error: TaskError | null;
  predict_time: number | null;
  /** img2img: the checked input as stored; null for txt2img. */
  input_image: StoredInputImage | null;
  /** The current progress preview's version while the attempt has one (migration 0018). */
  preview_version: number | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

export interface TaskImageRow {
  task_id: string;
  index: number;
  storage_key: string;
  content_type: string;
  bytes: number;
  width: number;
  height: number;
  seed: number;
  sha256: string;
  /** The WebP thumbnail at `thumbnailKey(storage_key)`; all null for images stored before 0015. */
  thumbnail_bytes: number | null;
  thumbnail_width: number | null;
  thumbnail_height: number | null;
  thumbnail_sha256: string | null;
  created_at: Date;
  /** Set by gc when the image passed its retention: its bytes are deleted, its URL answers 410. */
  expired_at: Date | null;
}

/** The lease a worker holds on one attempt; every write of that attempt presents it. */
export interface Lease {
  taskId: string;
  token: string;
  provider: string;
}
