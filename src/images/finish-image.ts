import sharp from 'sharp';
import { isLossy, OUTPUT_CONTENT_TYPES, type OutputFormat } from '../domain/output-format.js';
import type { TaskParams } from '../domain/task.js';
import { RetryableError } from '../providers/errors.js';
import { encodedImage, WEBP_EFFORT, type EncodedImage } from './encoded-image.js';
import { metadataBlocks } from './metadata-blocks.js';
import { withPngText } from './png-chunks.js';
import { makeThumbnail } from './thumbnail.js';

/**
 * The one place a provider's image becomes the bytes Easel stores: converted to the task's
 * output format, stripped of whatever the provider left in the file (EXIF with GPS, XMP, ICC,
 * comments, text chunks), optionally labelled with its generation parameters (PNG only), and
 * given a thumbnail. Runs once per image, in the worker, before anything is stored.
 *
 * All encoding goes through sharp's asynchronous API, which works on libuv's thread pool, so a
 * 4K conversion does not stall heartbeats or other attempts on the event loop.
 */

export interface FinishOptions {
  /** The task's output_format; undefined keeps the provider's format. */
  format: OutputFormat | undefined;
  /** For JPEG and WebP output, and for cleaning a provider's JPEG or WebP in its own format. */
  quality: number;
  /** Set when EASEL_EMBED_METADATA is on: written as PNG text chunks, when the output is PNG. */
  embed?: GenerationMetadata | undefined;
}

export interface GenerationMetadata {
  prompt: string;
  negativePrompt: string | null;
  seed: number;
  provider: string;
  model: string;
  steps: number;
}

export interface FinishedImage {
  image: EncodedImage;
  thumbnail: EncodedImage;
}

/** Same bound as the providers' own decode check (src/providers/http.ts decodeImage). */
const MAX_PIXELS = 100_000_000;

const SHARP_FORMATS: Record<string, OutputFormat> = { png: 'png', jpeg: 'jpeg', webp: 'webp' };

export async function finishImage(source: Buffer, options: FinishOptions): Promise<FinishedImage> {
  const sourceFormat = await sniffFormat(source);
  const format = options.format ?? sourceFormat ?? 'png';
  let image = await convert(source, sourceFormat, format, options);
  if (options.embed && format === 'png') {
    const data = withPngText(image.data, metadataEntries(options.embed));
    image = encodedImage(data, image.contentType, image.width, image.height);
  }
  return { image, thumbnail: await makeThumbnail(image.data) };
}

/** What the bytes are, from the bytes; undefined for a decodable format Easel does not store. */
async function sniffFormat(source: Buffer): Promise<OutputFormat | undefined> {
  try {
    const { format } = await sharp(source, { limitInputPixels: MAX_PIXELS }).metadata();
    return SHARP_FORMATS[format ?? ''];
  } catch (error) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', "the provider's image cannot be decoded", { cause: error });
  }
}

/**
 * The provider's bytes are kept as they are only when nothing needs doing: the same format,
 * no quality asked for, and no block besides pixels (which also means no EXIF orientation to
 * apply). Anything else is decoded, turned upright and encoded anew; sharp writes no metadata
 * unless told to (withMetadata), and converts to sRGB as it drops an ICC profile.
 */
async function convert(
  source: Buffer,
  sourceFormat: OutputFormat | undefined,
  format: OutputFormat,
  options: FinishOptions,
): Promise<EncodedImage> {
  const qualityAsked = options.format !== undefined && isLossy(format);
  if (sourceFormat === format && !qualityAsked && metadataBlocks(source, format).length === 0) {
    const { width, height } = await sharp(source, { limitInputPixels: MAX_PIXELS }).metadata();
    return encodedImage(source, OUTPUT_CONTENT_TYPES[format], width, height);
  }
  try {
    let pipeline = sharp(source, { limitInputPixels: MAX_PIXELS }).rotate();
    if (format === 'jpeg') pipeline = pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: options.quality });
    else if (format === 'webp') pipeline = pipeline.webp({ quality: options.quality, effort: WEBP_EFFORT });
    else pipeline = pipeline.png();
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    return encodedImage(data, OUTPUT_CONTENT_TYPES[format], info.width, info.height);
  } catch (error) {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', "the provider's image cannot be decoded", { cause: error });
  }
}

/** Keywords as lower-case names (PNG keywords are free text); `Software` is a registered one. */
function metadataEntries(meta: GenerationMetadata): Array<[string, string]> {
  return [
    ['Software', 'Easel'],
    ['prompt', meta.prompt],
    ...(meta.negativePrompt ? [['negative_prompt', meta.negativePrompt] as [string, string]] : []),
    ['seed', String(meta.seed)],
    ['provider', meta.provider],
    ['model', meta.model],
    ['steps', String(meta.steps)],
  ];
}

/**
 * The finishing a task asks for: its stored output settings (resolved at submit, src/tasks/
 * output-params.ts) and, when this worker embeds metadata, the generation parameters per seed.
 */
export function finishOptionsFor(
  task: { provider: string; model: string; params: TaskParams },
  config: { quality: number; embedMetadata: boolean },
): (seed: number) => FinishOptions {
  const { params } = task;
  return (seed) => ({
    format: params.output_format,
    quality: params.output_quality ?? config.quality,
    embed: config.embedMetadata
      ? {
          prompt: params.prompt,
          negativePrompt: params.negative_prompt,
          seed,
          provider: task.provider,
          model: task.model,
          steps: params.steps,
        }
      : undefined,
  });
}
