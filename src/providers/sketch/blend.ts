import sharp from 'sharp';
import type { InputImage } from '../types.js';

/**
 * The input image as raw RGB at the output size: scaled to cover it and centre-cropped, alpha
 * flattened onto white, so every output pixel has an input pixel under it.
 */
export async function inputPixels(input: InputImage, width: number, height: number): Promise<Buffer> {
  return sharp(input.data)
    .flatten({ background: '#ffffff' })
    .resize({ width, height, fit: 'cover' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer();
}

/**
 * Mix the sketch over the input, in place in `sketch`: strength 1 keeps the sketch alone, 0 the
 * input alone, as img2img strength means "how far from the input". Integer arithmetic, so the
 * same inputs give the same bytes everywhere.
 */
export function blendInto(sketch: Buffer, input: Buffer, strength: number): Buffer {
  if (sketch.length !== input.length) throw new RangeError('pixel buffers differ in size');
  const weight = Math.round(Math.min(1, Math.max(0, strength)) * 256);
  for (let i = 0; i < sketch.length; i++) {
    sketch[i] = (sketch[i]! * weight + input[i]! * (256 - weight) + 128) >> 8;
  }
  return sketch;
}
