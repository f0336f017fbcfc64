import sharp from 'sharp';
import { encodedImage, WEBP_EFFORT, type EncodedImage } from './encoded-image.js';

/** Longest side of a thumbnail, in pixels: enough for a listing or a console grid. */
export const THUMBNAIL_MAX_SIDE = 256;
export const THUMBNAIL_CONTENT_TYPE = 'image/webp';
/** Small and soft is fine at this size; the image itself is one click away. */
const THUMBNAIL_QUALITY = 75;

/**
 * Where an image's thumbnail is stored: its own key plus this suffix. Retention and gc find
 * thumbnails by it (delete an image's key and `thumbnailKey(key)` together); never change it.
 */
export const THUMBNAIL_SUFFIX = '.thumb.webp';
export const thumbnailKey = (imageKey: string): string => `${imageKey}${THUMBNAIL_SUFFIX}`;

/** Every object an image row stands for: its bytes and its thumbnail (made or not). */
export const imageObjectKeys = (imageKey: string): string[] => [imageKey, thumbnailKey(imageKey)];

/**
 * A WebP of the image fitted inside THUMBNAIL_MAX_SIDE², never enlarged. sharp encodes on its
 * thread pool; the event loop only waits. The input is a finished image (upright, clean).
 */
export async function makeThumbnail(image: Buffer): Promise<EncodedImage> {
  const { data, info } = await sharp(image, { limitInputPixels: false })
    .resize(THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: THUMBNAIL_QUALITY, effort: WEBP_EFFORT })
    .toBuffer({ resolveWithObject: true });
  return encodedImage(data, THUMBNAIL_CONTENT_TYPE, info.width, info.height);
}

/** The thumbnail of a recorded image, in the shape the image routes serve; none before 0015. */
export function storedThumbnail(image: {
  storage_key: string;
  thumbnail_sha256: string | null;
}): { storage_key: string; content_type: string; sha256: string } | undefined {
  if (!image.thumbnail_sha256) return undefined;
  return {
    storage_key: thumbnailKey(image.storage_key),
    content_type: THUMBNAIL_CONTENT_TYPE,
    sha256: image.thumbnail_sha256,
  };
}
