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
