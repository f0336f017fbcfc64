import type { Pool } from '../db/pool.js';
import type { Storage } from '../storage/storage.js';
import { decodeInputImage } from './decode-input-image.js';
import { insertUpload, newInputKey, type UploadRow } from './uploads.js';

export interface UploadDeps {
  pool: Pool;
  storage: Storage;
  maxPixels: number;
}

/**
 * Check an uploaded file and keep it. The bytes are checked before anything is written; the
 * row is inserted only after its bytes are stored, and the bytes are removed again when the
 * insert fails, so a refused or failed upload leaves nothing behind.
 */
export async function createUpload(deps: UploadDeps, userId: string, bytes: Buffer): Promise<UploadRow> {
  const checked = await decodeInputImage(bytes, { maxPixels: deps.maxPixels });
  const key = newInputKey();
  await deps.storage.put(key, checked.data, checked.contentType);
  try {
    return await insertUpload(deps.pool, userId, {
      storage_key: key,
      content_type: checked.contentType,
      bytes: checked.data.length,
      width: checked.width,
      height: checked.height,
      sha256: checked.sha256,
    });
  } catch (error) {
    await deps.storage.delete(key).catch(() => undefined);
    throw error;
  }
}
