import { uuidv7 } from 'uuidv7';
import type { Queryable } from '../db/pool.js';

/** A checked input image as recorded, on an upload row and on a task (`tasks.input_image`). */
export interface StoredInputImage {
  storage_key: string;
  content_type: string;
  bytes: number;
  width: number;
  height: number;
  sha256: string;
}

export interface UploadRow extends StoredInputImage {
  id: string;
  user_id: string;
  created_at: Date;
}

/**
 * A fresh storage key for an input image. Random, so it tells nothing about who sent it or
 * what the file was called; sharded by its random tail so no folder grows huge.
 */
export function newInputKey(): string {
  const id = uuidv7();
  return `inputs/${id.slice(-2)}/${id}.png`;
}

export async function insertUpload(db: Queryable, userId: string, image: StoredInputImage): Promise<UploadRow> {
  const { rows } = await db.query<UploadRow>(
    `INSERT INTO uploads (id, user_id, storage_key, content_type, bytes, width, height, sha256)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [uuidv7(), userId, image.storage_key, image.content_type, image.bytes, image.width, image.height, image.sha256],
  );
  return rows[0]!;
}

/** The user's own upload, or undefined: another user's upload is indistinguishable from none. */
export async function findUpload(db: Queryable, userId: string, id: string): Promise<UploadRow | undefined> {
  const { rows } = await db.query<UploadRow>('SELECT * FROM uploads WHERE user_id = $1 AND id = $2', [userId, id]);
  return rows[0];
}
