import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { inputImageError } from './input-errors.js';

/** The formats an input may arrive in, by sharp's name for them → the media type. */
const ACCEPTED_FORMATS: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** Every checked input is stored as this: lossless, and free of the source's metadata. */
export const CHECKED_CONTENT_TYPE = 'image/png';

export interface CheckedImage {
  /** PNG bytes: orientation applied, every metadata chunk (EXIF, XMP, ICC, text) gone. */
  data: Buffer;
  contentType: typeof CHECKED_CONTENT_TYPE;
  width: number;
  height: number;
  sha256: string;
  /** What the bytes were before re-encoding, sniffed from them (never from a header). */
  sourceContentType: string;
}

export interface DecodeLimits {
  /** Largest width × height decoded (EASEL_INPUT_MAX_PIXELS). */
  maxPixels: number;
  /** Shrink (keeping the aspect ratio) to fit these, never enlarge; unset = keep the size. */
  fitWidth?: number;
  fitHeight?: number;
}

export const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * Check untrusted bytes and turn them into a clean PNG.
 *
 * Order matters for safety: the header is read first (sharp's metadata reads no pixels), the
 * declared size is refused before anything is decoded, and the decode itself runs under
 * sharp's own pixel limit too, so a file whose header lies is still stopped by libvips.
 */
export async function decodeInputImage(bytes: Buffer, limits: DecodeLimits): Promise<CheckedImage> {
  if (bytes.length === 0) throw inputImageError('INPUT_IMAGE_INVALID', 'the image is empty');
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw inputImageError('INPUT_IMAGE_INVALID', 'the bytes are not an image this server reads (PNG, JPEG or WebP)');
  }
  const sourceContentType = ACCEPTED_FORMATS[metadata.format ?? ''];
  if (!sourceContentType) {
    throw inputImageError(
      'INPUT_IMAGE_INVALID',
      `the image is ${metadata.format ?? 'of an unknown format'}; PNG, JPEG and WebP are accepted`,
    );
  }
  const { width, height } = metadata;
  if (!width || !height) throw inputImageError('INPUT_IMAGE_INVALID', 'the image has no size');
  if (width * height > limits.maxPixels) {
    throw inputImageError(
      'INPUT_IMAGE_TOO_LARGE',
      `the image is ${width}x${height} (${width * height} pixels); at most ${limits.maxPixels} pixels are accepted`,
    );
  }
  let output: { data: Buffer; info: sharp.OutputInfo };
  try {
    let pipeline = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' }).rotate();
    if (limits.fitWidth !== undefined || limits.fitHeight !== undefined) {
      pipeline = pipeline.resize({
        width: limits.fitWidth,
        height: limits.fitHeight,
        fit: 'inside',
        withoutEnlargement: true,
      });
    }
    // sharp keeps no metadata unless asked (withMetadata), so the PNG carries pixels only.
    output = await pipeline.png().toBuffer({ resolveWithObject: true });
  } catch (error) {
    if (error instanceof Error && /pixel limit/i.test(error.message)) {
      throw inputImageError('INPUT_IMAGE_TOO_LARGE', `the image has more than ${limits.maxPixels} pixels`);
    }
    throw inputImageError('INPUT_IMAGE_INVALID', 'the image is damaged and cannot be decoded');
  }
  return {
    data: output.data,
    contentType: CHECKED_CONTENT_TYPE,
    width: output.info.width,
    height: output.info.height,
    sha256: sha256Hex(output.data),
    sourceContentType,
  };
}
