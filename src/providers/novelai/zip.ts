import { unzipSync } from 'fflate';
import { RetryableError } from '../errors.js';

/**
 * The images of NovelAI's answer: a ZIP whose entries are `image_0.png`, `image_1.png`, …, in
 * seed order. A body that is no ZIP, or a ZIP without images, is a malformed answer and
 * retryable: NovelAI generated (and charged) nothing it could hand over, a truncated or
 * garbled download is a transport fault, and the same request normally succeeds next time.
 * The attempt limit keeps a persistent fault from retrying for ever.
 */
export function unpackImages(body: Buffer, what: string): Buffer[] {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(body);
  } catch (error) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer is not a readable ZIP archive`, {
      cause: error,
    });
  }
  const images = Object.entries(entries)
    .map(([name, data]) => ({ index: /^image_(\d+)\.\w+$/.exec(name.split('/').pop() ?? '')?.[1], data }))
    .filter((entry): entry is { index: string; data: Uint8Array } => entry.index !== undefined && entry.data.length > 0)
    .sort((a, b) => Number(a.index) - Number(b.index));
  if (images.length === 0) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the ZIP archive holds no image_N entries`);
  }
  return images.map((entry) => Buffer.from(entry.data));
}
