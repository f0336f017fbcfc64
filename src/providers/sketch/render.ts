import { createHash } from 'node:crypto';
import sharp from 'sharp';

/**
 * The sketch provider's picture: a gradient coloured by the prompt, with shapes placed by a
 * PRNG seeded from seed and prompt. Pure and deterministic: same inputs, same PNG bytes.
 */
export interface SketchSpec {
  prompt: string;
  model: string;
  seed: number;
  width: number;
  height: number;
}

/** mulberry32: tiny, fast, and the same sequence everywhere for the same 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function promptDigest(spec: SketchSpec): Buffer {
  return createHash('sha256').update(`${spec.model}\n${spec.prompt}`).digest();
}

type Rgb = [number, number, number];

/** Raw RGB pixels, rows top to bottom. */
export function renderPixels(spec: SketchSpec): Buffer {
  const { width, height } = spec;
  const digest = promptDigest(spec);
  const random = mulberry32(digest.readUInt32LE(0) ^ spec.seed);
  const from: Rgb = [digest[4]!, digest[5]!, digest[6]!];
  const to: Rgb = [digest[7]!, digest[8]!, digest[9]!];
  const pixels = Buffer.allocUnsafe(width * height * 3);

  // Vertical gradient, one row at a time: the row colour is computed once, then copied.
  for (let y = 0; y < height; y++) {
    const t = height === 1 ? 0 : y / (height - 1);
    const r = Math.round(from[0] + (to[0] - from[0]) * t);
    const g = Math.round(from[1] + (to[1] - from[1]) * t);
    const b = Math.round(from[2] + (to[2] - from[2]) * t);
    const row = y * width * 3;
    pixels[row] = r;
    pixels[row + 1] = g;
    pixels[row + 2] = b;
    let filled = 3;
    while (filled < width * 3) {
      const span = Math.min(filled, width * 3 - filled);
      pixels.copy(pixels, row + filled, row, row + span);
      filled += span;
    }
  }

  const shapes = 4 + Math.floor(random() * 8);
  for (let i = 0; i < shapes; i++) {
    const colour: Rgb = [Math.floor(random() * 256), Math.floor(random() * 256), Math.floor(random() * 256)];
    const cx = random() * width;
    const cy = random() * height;
    const size = (0.05 + random() * 0.25) * Math.min(width, height);
    if (random() < 0.5) fillCircle(pixels, width, height, cx, cy, size, colour);
    else fillRect(pixels, width, height, cx - size, cy - size / 2, size * 2, size, colour);
  }
  return pixels;
}

function fillCircle(pixels: Buffer, width: number, height: number, cx: number, cy: number, radius: number, c: Rgb): void {
  const top = Math.max(0, Math.floor(cy - radius));
  const bottom = Math.min(height - 1, Math.ceil(cy + radius));
  for (let y = top; y <= bottom; y++) {
    const half = Math.sqrt(Math.max(0, radius * radius - (y - cy) * (y - cy)));
    fillSpan(pixels, width, y, Math.max(0, Math.floor(cx - half)), Math.min(width - 1, Math.ceil(cx + half)), c);
  }
}

function fillRect(pixels: Buffer, width: number, height: number, x: number, y: number, w: number, h: number, c: Rgb): void {
  const top = Math.max(0, Math.floor(y));
  const bottom = Math.min(height - 1, Math.floor(y + h));
  for (let row = top; row <= bottom; row++) {
    fillSpan(pixels, width, row, Math.max(0, Math.floor(x)), Math.min(width - 1, Math.floor(x + w)), c);
  }
}

function fillSpan(pixels: Buffer, width: number, y: number, x0: number, x1: number, c: Rgb): void {
  for (let x = x0, i = (y * width + x0) * 3; x <= x1; x++, i += 3) {
    pixels[i] = c[0];
    pixels[i + 1] = c[1];
    pixels[i + 2] = c[2];
  }
}

/**
 * Encode on libuv's thread pool (sharp), off the event loop. Fixed settings and no metadata,
 * so the bytes depend on the pixels alone.
 */
export function encodePng(pixels: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}

export async function renderSketch(spec: SketchSpec): Promise<Buffer> {
  return encodePng(renderPixels(spec), spec.width, spec.height);
}
