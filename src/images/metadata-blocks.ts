import type { OutputFormat } from '../domain/output-format.js';
import { readPngChunks } from './png-chunks.js';

/**
 * Which blocks of an image file carry something besides pixels (EXIF with GPS and camera, XMP,
 * IPTC, ICC profiles, comments, text, private chunks). Read from the container itself rather
 * than from a decoder's summary, so a block nobody decodes (a JPEG comment, a private PNG
 * chunk) still counts: bytes are stored unchanged only when this finds nothing.
 *
 * Unreadable structure counts as metadata too ('malformed'): the image is then re-encoded,
 * which either cleans it or fails as a bad provider answer.
 */
export function metadataBlocks(data: Buffer, format: OutputFormat): string[] {
  try {
    if (format === 'png') return pngBlocks(data);
    if (format === 'jpeg') return jpegBlocks(data);
    return webpBlocks(data);
  } catch {
    return ['malformed'];
  }
}

/** Critical chunks and the ancillary ones that only say how to render the pixels. */
const PNG_PIXEL_CHUNKS = new Set([
  'IHDR',
  'PLTE',
  'IDAT',
  'IEND',
  'tRNS',
  'gAMA',
  'cHRM',
  'sRGB',
  'sBIT',
  'pHYs',
  'bKGD',
]);

function pngBlocks(data: Buffer): string[] {
  const chunks = readPngChunks(data);
  if (chunks.at(-1)?.type !== 'IEND') return ['malformed'];
  return chunks.filter((chunk) => !PNG_PIXEL_CHUNKS.has(chunk.type)).map((chunk) => chunk.type);
}

const SOI = 0xd8;
const SOS = 0xda;
const APP0 = 0xe0; // JFIF header: density and version only
const APP14 = 0xee; // Adobe: the colour transform decoders need

/** Segments before the scan (ITU T.81, the JPEG standard): APP1–APP15 but APP0 and APP14, and COM. */
function jpegBlocks(data: Buffer): string[] {
  if (data[0] !== 0xff || data[1] !== SOI) return ['malformed'];
  const found: string[] = [];
  let offset = 2;
  for (;;) {
    if (data[offset] !== 0xff) return [...found, 'malformed'];
    while (data[offset] === 0xff) offset++; // fill bytes may precede a marker
    const marker = data[offset];
    if (marker === undefined) return [...found, 'malformed'];
    offset++;
    // Markers without a length: TEM and RST0–7 (none belong here, but they are harmless).
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (offset + 2 > data.length) return [...found, 'malformed'];
    const length = data.readUInt16BE(offset);
    if (marker === SOS) return found;
    if (marker === 0xfe) found.push('COM');
    else if (marker >= 0xe0 && marker <= 0xef && marker !== APP0 && marker !== APP14) found.push(`APP${marker - APP0}`);
    offset += length;
  }
}

/** Chunks of the RIFF container (RFC 9649, the WebP container): image data and animation only; EXIF, XMP, ICCP are not. */
const WEBP_PIXEL_CHUNKS = new Set(['VP8 ', 'VP8L', 'VP8X', 'ALPH', 'ANIM', 'ANMF']);

function webpBlocks(data: Buffer): string[] {
  if (data.toString('latin1', 0, 4) !== 'RIFF' || data.toString('latin1', 8, 12) !== 'WEBP') return ['malformed'];
  const found: string[] = [];
  let offset = 12;
  while (offset + 8 <= data.length) {
    const type = data.toString('latin1', offset, offset + 4);
    const size = data.readUInt32LE(offset + 4);
    if (!WEBP_PIXEL_CHUNKS.has(type)) found.push(type.trim());
    offset += 8 + size + (size % 2); // chunks are padded to an even size
  }
  return offset === data.length ? found : [...found, 'malformed'];
}
