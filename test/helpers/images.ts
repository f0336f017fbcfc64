import zlib from 'node:zlib';
import sharp from 'sharp';
import { encodePngChunk } from '../../src/images/png-chunks.js';

/** A solid-colour PNG of the given size. */
export const solidPng = (width: number, height: number, rgb: [number, number, number]): Promise<Buffer> =>
  sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();

export const dataUrl = (bytes: Buffer, type = 'image/png'): string => `data:${type};base64,${bytes.toString('base64')}`;

/**
 * A decompression bomb: a few hundred bytes whose header declares width × height RGB pixels
 * (60000² would be 10.8 GB decoded). Its one IDAT holds a few compressed rows only.
 */
export function bombPng(width = 60000, height = 60000): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    encodePngChunk('IHDR', header),
    encodePngChunk('IDAT', zlib.deflateSync(Buffer.alloc((width * 3 + 1) * 2))),
    encodePngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Mean of each RGB channel of an image. */
export async function meanRgb(bytes: Buffer): Promise<[number, number, number]> {
  const stats = await sharp(bytes).stats();
  return [stats.channels[0]!.mean, stats.channels[1]!.mean, stats.channels[2]!.mean];
}

/** POST /v1/uploads with one file in the field `image` (or `field`). */
export async function upload(
  base: string,
  bytes: Buffer,
  field = 'image',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new FormData();
  form.append(field, new Blob([bytes]), 'photo.bin');
  const response = await fetch(`${base}/v1/uploads`, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
