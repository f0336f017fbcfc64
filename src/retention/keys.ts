import { THUMBNAIL_SUFFIX } from '../images/thumbnail.js';

/**
 * The key families gc looks after. Result images live under `tasks/`, their thumbnails beside
 * them as `<image key>.thumb.webp`, and input images (uploads and img2img inputs) under
 * `inputs/`. gc never lists or deletes outside these prefixes: objects of other kinds are not its
 * business.
 */
export const MANAGED_PREFIXES = ['tasks/', 'inputs/'] as const;

/**
 * The key a row would record for this object: a thumbnail is recorded when its image is, so it
 * is looked up by the image's key.
 */
export const recordingKey = (objectKey: string): string =>
  objectKey.endsWith(THUMBNAIL_SUFFIX) && objectKey.length > THUMBNAIL_SUFFIX.length
    ? objectKey.slice(0, -THUMBNAIL_SUFFIX.length)
    : objectKey;
