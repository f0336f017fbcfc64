import zlib from 'node:zlib';

/**
 * PNG chunk reading and writing (the PNG specification: chunk layout and "Textual information"): just enough to list a
 * file's chunks and to add text chunks, which sharp cannot write.
 */

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface PngChunk {
  type: string;
  data: Buffer;
  /** Offset of the chunk's length field in the file. */
  start: number;
  /** Offset just past its CRC. */
  end: number;
}

export class MalformedPngError extends Error {
  override name = 'MalformedPngError';
}

/** Every chunk in order; a bad signature, a cut-off chunk or a wrong CRC is refused. */
export function readPngChunks(png: Buffer): PngChunk[] {
  if (png.length < PNG_SIGNATURE.length || !png.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new MalformedPngError('not a PNG: the signature is missing');
  }
  const chunks: PngChunk[] = [];
  let offset = PNG_SIGNATURE.length;
  while (offset < png.length) {
    if (offset + 12 > png.length) throw new MalformedPngError(`a chunk at byte ${offset} is cut off`);
    const length = png.readUInt32BE(offset);
    const end = offset + 12 + length;
    if (end > png.length) throw new MalformedPngError(`a chunk at byte ${offset} is cut off`);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (png.readUInt32BE(offset + 8 + length) !== zlib.crc32(data, zlib.crc32(png.subarray(offset + 4, offset + 8)))) {
      throw new MalformedPngError(`the ${type} chunk at byte ${offset} has a wrong CRC`);
    }
    chunks.push({ type, data, start: offset, end });
    offset = end;
    if (type === 'IEND') break;
  }
  return chunks;
}

/** One chunk: length, type, data, and the CRC-32 of type and data. */
export function encodePngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

// tEXt holds Latin-1 only: printable characters and the line feed.
const LATIN1_TEXT = /^[\n\u0020-\u007e\u00a1-\u00ff]*$/;
// Keywords are 1–79 printable Latin-1 characters, no leading, trailing or double spaces.
const KEYWORD = /^(?! )(?!.* {2})(?!.* $)[\u0020-\u007e\u00a1-\u00ff]{1,79}$/;

/**
 * A text chunk for `keyword`: tEXt when the text is Latin-1 (every reader knows it), otherwise
 * an uncompressed iTXt, whose text is UTF-8, so any prompt survives unchanged.
 */
export function textChunk(keyword: string, text: string): Buffer {
  if (!KEYWORD.test(keyword)) throw new RangeError(`not a PNG text keyword: ${JSON.stringify(keyword)}`);
  if (LATIN1_TEXT.test(text)) {
    return encodePngChunk(
      'tEXt',
      Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.of(0), Buffer.from(text, 'latin1')]),
    );
  }
  // keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, text.
  const head = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.of(0, 0, 0, 0, 0)]);
  return encodePngChunk('iTXt', Buffer.concat([head, Buffer.from(text, 'utf8')]));
}

/**
 * The PNG with text chunks added right after IHDR: readers that stop at the first IDAT (most
 * "PNG info" tools) still find them. The pixels are not touched.
 */
export function withPngText(png: Buffer, entries: ReadonlyArray<readonly [string, string]>): Buffer {
  const [header] = readPngChunks(png);
  if (header?.type !== 'IHDR') throw new MalformedPngError('the first chunk is not IHDR');
  const chunks = entries.map(([keyword, text]) => textChunk(keyword, text));
  return Buffer.concat([png.subarray(0, header.end), ...chunks, png.subarray(header.end)]);
}

/** Every tEXt, zTXt and iTXt entry, keyword → text (a repeated keyword keeps its last text). */
export function readPngText(png: Buffer): Record<string, string> {
  const texts: Record<string, string> = {};
  for (const { type, data } of readPngChunks(png)) {
    const nul = data.indexOf(0);
    if (nul < 1) continue;
    const keyword = data.toString('latin1', 0, nul);
    if (type === 'tEXt') texts[keyword] = data.toString('latin1', nul + 1);
    if (type === 'zTXt') texts[keyword] = zlib.inflateSync(data.subarray(nul + 2)).toString('latin1');
    if (type === 'iTXt') {
      const compressed = data[nul + 1] === 1;
      const language = data.indexOf(0, nul + 3);
      const translated = data.indexOf(0, language + 1);
      if (language < 0 || translated < 0) continue;
      const body = data.subarray(translated + 1);
      texts[keyword] = (compressed ? zlib.inflateSync(body) : body).toString('utf8');
    }
  }
  return texts;
}
