import type { Pool } from '../db/pool.js';
import { UserUrlFailed, UserUrlRefused, type FetchUserUrl } from '../net/user-url.js';
import type { ModelInfo } from '../providers/types.js';
import type { Storage } from '../storage/storage.js';
import { decodeInputImage, type CheckedImage } from './decode-input-image.js';
import { inputImageError } from './input-errors.js';
import { readStoredBytes } from './read-stored.js';
import { findUpload, newInputKey, type StoredInputImage } from './uploads.js';

export interface InputImageDeps {
  pool: Pool;
  storage: Storage;
  /** EASEL_INPUT_MAX_PIXELS. */
  maxPixels: number;
  /**
   * Fetches `http(s)://` inputs: the SSRF-guarded fetcher (src/net/user-url.ts), handed in so this
   * module never reaches the network on its own. Its `contentType` is never trusted: the bytes
   * are sniffed like any other input.
   */
  fetchUserUrl: FetchUserUrl;
}

/**
 * The input a task will run on. When `pending` is set, its bytes are not stored yet: the caller
 * writes them under `image.storage_key` just before it inserts the task (after its last
 * refusal), so a refused submit writes nothing.
 */
export interface ResolvedInputImage {
  image: StoredInputImage;
  pending?: Buffer;
}

const UPLOAD_REFERENCE = /^upload:(.*)$/s;
const URL_REFERENCE = /^https?:\/\//i;
const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/s;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Turn the `image` field of a submit into a checked, model-sized input. Every refusal is a 400
 * naming `/image`; nothing is written here (see ResolvedInputImage.pending).
 */
export async function resolveInputImage(
  deps: InputImageDeps,
  userId: string,
  value: string,
  model: Pick<ModelInfo, 'maxWidth' | 'maxHeight'>,
): Promise<ResolvedInputImage> {
  const limits = { maxPixels: deps.maxPixels, fitWidth: model.maxWidth, fitHeight: model.maxHeight };
  const upload = UPLOAD_REFERENCE.exec(value);
  if (upload) return resolveUpload(deps, userId, upload[1]!, limits);
  if (URL_REFERENCE.test(value)) return fresh(await decodeInputImage(await fetchUrl(deps, value), limits));
  if (value.startsWith('data:')) return fresh(await decodeInputImage(parseDataUrl(value), limits));
  throw inputImageError('INPUT_IMAGE_INVALID', 'must be a data: URL, an http(s):// URL or upload:<id>');
}

async function resolveUpload(
  deps: InputImageDeps,
  userId: string,
  id: string,
  limits: { maxPixels: number; fitWidth: number; fitHeight: number },
): Promise<ResolvedInputImage> {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const row = UUID.test(id) ? await findUpload(deps.pool, userId, id) : undefined;
  if (!row) throw inputImageError('UPLOAD_NOT_FOUND', `no upload ${id} of yours; upload with POST /v1/uploads`);
  const { id: _id, user_id: _user, created_at: _at, ...image } = row;
  // Already checked at upload; it is shared as is when the model can take its size.
  if (row.width <= limits.fitWidth && row.height <= limits.fitHeight) return { image };
  const bytes = await readStoredBytes(deps.storage, row.storage_key);
  if (!bytes) throw new Error(`upload ${row.id} is recorded but its bytes are missing from storage`);
  return fresh(await decodeInputImage(bytes, limits));
}

async function fetchUrl(deps: InputImageDeps, url: string): Promise<Buffer> {
  try {
    return (await deps.fetchUserUrl(url)).bytes;
  } catch (error) {
    // The refusal's text names the kind of address, never the address itself.
    if (error instanceof UserUrlRefused) throw inputImageError('INPUT_IMAGE_URL_REFUSED', error.message);
    if (error instanceof UserUrlFailed) throw inputImageError('INPUT_IMAGE_FETCH_FAILED', error.message);
    throw error;
  }
}

function parseDataUrl(value: string): Buffer {
  const match = DATA_URL.exec(value);
  const parameters = match?.[2]?.split(';') ?? [];
  if (!match || !parameters.includes('base64')) {
    throw inputImageError('INPUT_IMAGE_INVALID', 'a data: URL must be base64, like data:image/png;base64,…');
  }
  // The declared media type is ignored: the bytes say what they are.
  const payload = match[3]!.replace(/\s+/g, '');
  if (!BASE64.test(payload) || payload.length % 4 === 1) {
    throw inputImageError('INPUT_IMAGE_INVALID', 'the data: URL is not valid base64');
  }
  return Buffer.from(payload, 'base64');
}

function fresh(checked: CheckedImage): ResolvedInputImage {
  return {
    image: {
      storage_key: newInputKey(),
      content_type: checked.contentType,
      bytes: checked.data.length,
      width: checked.width,
      height: checked.height,
      sha256: checked.sha256,
    },
    pending: checked.data,
  };
}
