import { RetryableError } from '../errors.js';
import { decodeImage } from '../http.js';
import type { GeneratedImage } from '../types.js';

interface GenerationAnswer {
  images?: unknown;
  info?: unknown;
}

interface GenerationInfo {
  all_seeds?: unknown;
  index_of_first_image?: unknown;
}

/** `info` is a JSON document inside a string; a server (or extension) may leave it out or break it. */
function parseInfo(info: unknown): GenerationInfo {
  if (typeof info !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(info);
    return parsed && typeof parsed === 'object' ? (parsed as GenerationInfo) : {};
  } catch {
    return {};
  }
}

/**
 * The task's images out of a txt2img/img2img answer. With several images and the WebUI's
 * "return grid" setting on, the grid comes first (`index_of_first_image` is 1 in `info`), and
 * extensions such as ControlNet append their maps after the images: only the `n` images from
 * the first real one are results. Seeds come from `info.all_seeds`, else seed + i as the WebUI
 * assigns them.
 */
export async function readImages(answer: unknown, n: number, seed: number, what: string): Promise<GeneratedImage[]> {
  const body = (answer && typeof answer === 'object' ? answer : {}) as GenerationAnswer;
  if (!Array.isArray(body.images) || !body.images.every((image) => typeof image === 'string')) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer has no images list`);
  }
  const info = parseInfo(body.info);
  const first = typeof info.index_of_first_image === 'number' ? info.index_of_first_image : 0;
  const images = (body.images as string[]).slice(first, first + n);
  if (images.length === 0) throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the answer has no images`);
  const seeds = Array.isArray(info.all_seeds) ? info.all_seeds : [];
  return Promise.all(
    images.map((base64, index) => {
      const reported = seeds[index];
      const imageSeed = typeof reported === 'number' && Number.isSafeInteger(reported) ? reported : seed + index;
      return decodeImage(Buffer.from(base64.replace(/^data:[^,]*,/, ''), 'base64'), imageSeed, what);
    }),
  );
}
