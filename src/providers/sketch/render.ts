import { createHash } from 'node:crypto';
import { encodeRgbPng } from './png.js';

/**
 * The sketch provider's picture: a vertical gradient coloured by the prompt, with circles,
 * rectangles and lines placed by a PRNG seeded from seed and prompt. Pure and deterministic:
 * same inputs, same PNG bytes (for a given zlib; another zlib version may compress
 * differently, which is why nothing outside tests should pin exact bytes).
 */
export interface SketchSpec {
  prompt: string;
  model: string;
  /** Any whole number; results report `seed + i`, which can pass 2^32 − 1. */
  seed: number;
  width: number;
  height: number;
}

/** Three bytes, so long spans can use Buffer#fill's native pattern fill. */
type Rgb = Buffer;

interface Canvas {
  pixels: Buffer;
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

/**
 * The PRNG's 32-bit state. XOR with the low word keeps every seed in 0…2^32 − 1 distinct for a
 * prompt; the high word (seed + i can pass 2^32) is folded in so 2^32 and 0 differ too.
 */
function prngSeed(digest: Buffer, seed: number): number {
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  return (digest.readUInt32LE(0) ^ low ^ Math.imul(high, 0x9e3779b1)) >>> 0;
}

/** Raw RGB pixels, rows top to bottom, 3 bytes a pixel. */
export function renderPixels(spec: SketchSpec): Buffer {
  const { width, height } = spec;
  // The model is hashed too, so a future sketch-v2 need not draw the same pictures.
  const digest = createHash('sha256').update(`${spec.model}\n${spec.prompt}`).digest();
  const random = mulberry32(prngSeed(digest, spec.seed));
  const canvas: Canvas = { pixels: Buffer.allocUnsafe(width * height * 3), width, height };

  // The prompt alone picks the palette, so one prompt's seeds look like a family.
  const top = digest.subarray(4, 7);
  const bottom = digest.subarray(7, 10);
  const row = Buffer.alloc(3);
  for (let y = 0; y < height; y++) {
    const t = height === 1 ? 0 : y / (height - 1);
    for (let i = 0; i < 3; i++) row[i] = Math.round(top[i]! + (bottom[i]! - top[i]!) * t);
    fillSpan(canvas, y, 0, width - 1, row);
  }

  const minSide = Math.min(width, height);
  const shapes = 6 + Math.floor(random() * 10);
  for (let i = 0; i < shapes; i++) {
    const colour: Rgb = Buffer.from([
      Math.floor(random() * 256),
      Math.floor(random() * 256),
      Math.floor(random() * 256),
    ]);
    const kind = random();
    const x = random() * width;
    const y = random() * height;
    const size = (0.05 + random() * 0.25) * minSide;
    if (kind < 0.4) fillCircle(canvas, x, y, size, colour);
    else if (kind < 0.75) fillRect(canvas, x - size, y - size / 2, size * 2, size, colour);
    else drawLine(canvas, x, y, random() * width, random() * height, 1 + random() * minSide * 0.02, colour);
  }
  return canvas.pixels;
}

function fillCircle(canvas: Canvas, cx: number, cy: number, radius: number, c: Rgb): void {
  const top = Math.max(0, Math.floor(cy - radius));
  const bottom = Math.min(canvas.height - 1, Math.ceil(cy + radius));
  for (let y = top; y <= bottom; y++) {
    const half = Math.sqrt(Math.max(0, radius * radius - (y - cy) * (y - cy)));
    fillSpan(canvas, y, Math.floor(cx - half), Math.ceil(cx + half), c);
  }
}

function fillRect(canvas: Canvas, x: number, y: number, w: number, h: number, c: Rgb): void {
  const top = Math.max(0, Math.floor(y));
  const bottom = Math.min(canvas.height - 1, Math.floor(y + h));
  for (let row = top; row <= bottom; row++) fillSpan(canvas, row, Math.floor(x), Math.floor(x + w), c);
}

/**
 * A thick line, walked along its longer axis so each covered pixel is written about once:
 * one short run across the line per step.
 */
function drawLine(canvas: Canvas, x0: number, y0: number, x1: number, y1: number, thickness: number, c: Rgb): void {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const before = Math.floor(thickness / 2);
  const after = Math.ceil(thickness / 2) - 1;
  if (Math.abs(dx) >= Math.abs(dy)) {
    const from = Math.max(0, Math.ceil(Math.min(x0, x1)));
    const to = Math.min(canvas.width - 1, Math.floor(Math.max(x0, x1)));
    for (let x = from; x <= to; x++) {
      const y = Math.round(dx === 0 ? y0 : y0 + (dy * (x - x0)) / dx);
      for (let row = Math.max(0, y - before); row <= Math.min(canvas.height - 1, y + after); row++) {
        fillSpan(canvas, row, x, x, c);
      }
    }
  } else {
    const from = Math.max(0, Math.ceil(Math.min(y0, y1)));
    const to = Math.min(canvas.height - 1, Math.floor(Math.max(y0, y1)));
    for (let y = from; y <= to; y++) {
      const x = Math.round(x0 + (dx * (y - y0)) / dy);
      fillSpan(canvas, y, x - before, x + after, c);
    }
  }
}

/** Paint pixels x0…x1 (inclusive, clipped to the canvas) of row y. */
function fillSpan(canvas: Canvas, y: number, x0: number, x1: number, c: Rgb): void {
  const { pixels, width } = canvas;
  const start = (y * width + Math.max(0, x0)) * 3;
  const end = (y * width + Math.min(width - 1, x1) + 1) * 3;
  // The native fill wins on long runs; a native call costs more than a few JS writes on short ones.
  if (end - start >= 48) {
    pixels.fill(c, start, end);
    return;
  }
  const [r = 0, g = 0, b = 0] = c;
  for (let i = start; i < end; i += 3) {
    pixels[i] = r;
    pixels[i + 1] = g;
    pixels[i + 2] = b;
  }
}

export async function renderSketch(spec: SketchSpec): Promise<Buffer> {
  return encodeRgbPng(renderPixels(spec), spec.width, spec.height);
}
