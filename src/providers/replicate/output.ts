import { RetryableError } from '../errors.js';
import { decodeImage, downloadImage } from '../http.js';
import type { GeneratedImage, RunContext } from '../types.js';
import type { Prediction } from './api.js';

/**
 * The output files of a succeeded prediction, as Easel images. `output` is a URL or a list of
 * URLs (the model's output schema decides), or `data:` URIs when a model inlines its files.
 * Files are fetched now, because Replicate deletes API predictions' files after an hour and
 * its URLs must never reach users.
 */
export async function downloadOutputs(
  ctx: Pick<RunContext, 'fetch' | 'signal'>,
  prediction: Prediction,
  seed: number,
): Promise<GeneratedImage[]> {
  const what = `replicate: prediction ${prediction.id}`;
  if (prediction.data_removed) {
    throw new RetryableError('PROVIDER_OUTPUT_GONE', `${what}: Replicate already removed the output files`);
  }
  const output = prediction.output;
  const urls = typeof output === 'string' ? [output] : Array.isArray(output) ? output : undefined;
  if (!urls || urls.length === 0 || !urls.every((url): url is string => typeof url === 'string')) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: the output is not a list of file URLs`);
  }
  const images: GeneratedImage[] = [];
  // One file at a time: a batch is small, and an abort lands between files.
  for (const url of urls) images.push(await outputImage(ctx, url, seed, what));
  return images;
}

async function outputImage(
  ctx: Pick<RunContext, 'fetch' | 'signal'>,
  url: string,
  seed: number,
  what: string,
): Promise<GeneratedImage> {
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',');
    if (comma === -1 || !url.slice(0, comma).endsWith(';base64')) {
      throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: an output data URI is not base64`);
    }
    return decodeImage(Buffer.from(url.slice(comma + 1), 'base64'), seed, what);
  }
  if (!/^https?:\/\//i.test(url)) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${what}: an output is not an http(s) URL`);
  }
  return downloadImage(ctx, url, seed, what);
}
