import type { Storage } from '../storage/storage.js';

/** All bytes of a stored object, or undefined when it is missing. Inputs are bounded by EASEL_INPUT_MAX_PIXELS. */
export async function readStoredBytes(storage: Storage, key: string): Promise<Buffer | undefined> {
  const object = await storage.get(key);
  if (!object) return undefined;
  const chunks = (await object.body.toArray()) as Buffer[];
  return Buffer.concat(chunks);
}
