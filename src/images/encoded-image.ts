import { createHash } from 'node:crypto';

/** Bytes ready to store, with what the image row records about them. */
export interface EncodedImage {
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
  sha256: string;
}

export const encodedImage = (data: Buffer, contentType: string, width: number, height: number): EncodedImage => ({
  data,
  contentType,
  width,
  height,
  sha256: createHash('sha256').update(data).digest('hex'),
});

/**
 * libwebp's effort 0–6 (sharp's default 4). Measured on 1024² images: effort 2 encodes about
 * 3–4 times faster than 4 for 1–4 % more bytes; a worker encodes every image of every task.
 */
export const WEBP_EFFORT = 2;
