import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { finishImage, finishOptionsFor, type FinishOptions } from '../../src/images/finish-image.js';
import { metadataBlocks } from '../../src/images/metadata-blocks.js';
import { readPngChunks, readPngText, withPngText } from '../../src/images/png-chunks.js';
import { makeThumbnail, storedThumbnail, thumbnailKey } from '../../src/images/thumbnail.js';
import { RetryableError } from '../../src/providers/errors.js';

/** Noise, so that a lossy quality setting visibly changes the size (a flat colour would not). */
const noisy = (width: number, height: number) =>
  sharp({
    create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
  });

/** What the first bytes say the file is, independent of sharp. */
function sniff(data: Buffer): string {
  if (data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg';
  if (data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return 'unknown';
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const keep: FinishOptions = { format: undefined, quality: 90 };

/** 51/1 30/1 as little-endian EXIF rationals: the latitude's degrees and minutes. */
const GPS_LATITUDE = Buffer.from([51, 0, 0, 0, 1, 0, 0, 0, 30, 0, 0, 0, 1, 0, 0, 0]);

/** A JPEG carrying EXIF with a GPS IFD (libvips names it IFD3), a copyright and an orientation. */
async function jpegWithGps(): Promise<Buffer> {
  return sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } })
    .jpeg({ quality: 90 })
    .withMetadata({ orientation: 6 })
    .withExifMerge({
      IFD0: { Copyright: 'owner-name-xyz' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 1234/100' },
    })
    .toBuffer();
}

describe('finishImage: formats', () => {
  it.each([
    ['png', 'image/png'],
    ['jpeg', 'image/jpeg'],
    ['webp', 'image/webp'],
  ] as const)('converts a PNG to %s, sniffed by its magic bytes', async (format, contentType) => {
    const source = await noisy(80, 60).png().toBuffer();
    const { image } = await finishImage(source, { format, quality: 80 });
    expect(sniff(image.data)).toBe(format);
    expect(image.contentType).toBe(contentType);
    expect([image.width, image.height]).toEqual([80, 60]);
    expect(image.sha256).toBe(sha256(image.data));
    const decoded = await sharp(image.data).metadata();
    expect([decoded.format, decoded.width, decoded.height]).toEqual([format, 80, 60]);
  });

  it('keeps the bytes of a clean PNG when no format is asked for', async () => {
    const source = await noisy(32, 32).png().toBuffer();
    const { image } = await finishImage(source, keep);
    expect(image.data.equals(source)).toBe(true);
    expect(image.contentType).toBe('image/png');
  });

  it('keeps a provider JPEG as JPEG when no format is asked for', async () => {
    const source = await noisy(40, 30).jpeg().toBuffer();
    const { image } = await finishImage(source, keep);
    expect(sniff(image.data)).toBe('jpeg');
    expect(image.data.equals(source)).toBe(true);
  });

  it('gives a smaller file for a lower quality, for JPEG and WebP', async () => {
    const source = await noisy(128, 128).png().toBuffer();
    for (const format of ['jpeg', 'webp'] as const) {
      const low = await finishImage(source, { format, quality: 10 });
      const high = await finishImage(source, { format, quality: 95 });
      expect(low.image.data.length).toBeLessThan(high.image.data.length * 0.7);
    }
  });

  it('re-encodes a JPEG asked for as JPEG, so the quality applies', async () => {
    const source = await noisy(96, 96).jpeg({ quality: 100 }).toBuffer();
    const { image } = await finishImage(source, { format: 'jpeg', quality: 20 });
    expect(image.data.length).toBeLessThan(source.length / 2);
  });

  it('puts a transparent image on white for JPEG, which has no alpha', async () => {
    const source = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const { image } = await finishImage(source, { format: 'jpeg', quality: 90 });
    const stats = await sharp(image.data).stats();
    expect(stats.channels[0]!.mean).toBeGreaterThan(250);
  });

  it('refuses bytes that are no image as a retryable bad provider answer', async () => {
    const error = await finishImage(Buffer.from('<html>oops</html>'), keep).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe('PROVIDER_BAD_OUTPUT');
  });
});

describe('finishImage: metadata', () => {
  it('strips EXIF with GPS from a provider JPEG and applies its orientation', async () => {
    const source = await jpegWithGps();
    const before = await sharp(source).metadata();
    expect(before.orientation).toBe(6);
    // The fixture really carries what must go: the GPS IFD pointer (tag 0x8825, little-endian) and its text.
    expect(before.exif?.includes(Buffer.from([0x25, 0x88]))).toBe(true);
    expect(source.includes(GPS_LATITUDE)).toBe(true);
    expect(metadataBlocks(source, 'jpeg')).toContain('APP1');

    for (const format of [undefined, 'jpeg', 'png', 'webp'] as const) {
      const { image, thumbnail } = await finishImage(source, { format, quality: 90 });
      const after = await sharp(image.data).metadata();
      expect(after.exif).toBeUndefined();
      expect(after.xmp).toBeUndefined();
      expect(after.icc).toBeUndefined();
      expect(after.orientation).toBeUndefined();
      expect(image.data.includes(GPS_LATITUDE)).toBe(false);
      expect(image.data.includes('owner-name-xyz')).toBe(false);
      expect(metadataBlocks(image.data, format ?? 'jpeg')).toEqual([]);
      // Orientation 6 turns the stored 64×48 upright: 48×64.
      expect([image.width, image.height]).toEqual([48, 64]);
      expect((await sharp(thumbnail.data).metadata()).exif).toBeUndefined();
    }
  });

  it('drops text, time and private chunks a provider left in a PNG', async () => {
    const clean = await noisy(16, 16).png().toBuffer();
    const labelled = withPngText(clean, [
      ['parameters', 'a secret prompt, Steps: 20'],
      ['Comment', 'more'],
    ]);
    expect(metadataBlocks(labelled, 'png')).toEqual(['tEXt', 'tEXt']);
    const { image } = await finishImage(labelled, keep);
    expect(metadataBlocks(image.data, 'png')).toEqual([]);
    expect(readPngText(image.data)).toEqual({});
    expect(image.data.includes('secret prompt')).toBe(false);
  });

  it('re-encodes a provider JPEG that carries only a comment segment', async () => {
    const clean = await noisy(24, 24).jpeg().toBuffer();
    const text = Buffer.from('prompt: my private words');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(text.length + 2);
    const commented = Buffer.concat([clean.subarray(0, 2), Buffer.from([0xff, 0xfe]), length, text, clean.subarray(2)]);
    expect(metadataBlocks(commented, 'jpeg')).toEqual(['COM']);
    expect(metadataBlocks(clean, 'jpeg')).toEqual([]);
    const { image } = await finishImage(commented, keep);
    expect(sniff(image.data)).toBe('jpeg');
    expect(image.data.includes('private words')).toBe(false);
  });

  it('counts a file it cannot walk as carrying metadata', () => {
    expect(metadataBlocks(Buffer.from([0xff, 0xd8, 0x00]), 'jpeg')).toContain('malformed');
    expect(metadataBlocks(Buffer.from('RIFF\x00\x00\x00\x00WEBPVP8 \xff\xff'), 'webp')).toContain('malformed');
    expect(metadataBlocks(Buffer.from('not a png'), 'png')).toEqual(['malformed']);
  });

  it('strips EXIF and XMP from a provider WebP', async () => {
    const source = await noisy(24, 24)
      .webp()
      .withExif({ IFD0: { Artist: 'someone-private' } })
      .withXmp(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>',
      )
      .toBuffer();
    expect(metadataBlocks(source, 'webp')).toEqual(expect.arrayContaining(['EXIF', 'XMP']));
    const { image } = await finishImage(source, keep);
    expect(sniff(image.data)).toBe('webp');
    expect(metadataBlocks(image.data, 'webp')).toEqual([]);
    expect(image.data.includes('someone-private')).toBe(false);
  });

  it('embeds prompt, seed, model and steps as PNG text chunks that read back', async () => {
    const source = await noisy(32, 32).png().toBuffer();
    const task = {
      provider: 'sketch',
      model: 'sketch-v1',
      params: {
        prompt: 'a fox in snow, 雪の中の狐 🦊',
        negative_prompt: 'blur',
        width: 32,
        height: 32,
        steps: 12,
        guidance: 7,
        n: 1,
        seed: 41,
        output_format: 'png' as const,
      },
    };
    const options = finishOptionsFor(task, { quality: 90, embedMetadata: true })(42);
    const { image } = await finishImage(source, options);
    expect(readPngText(image.data)).toEqual({
      Software: 'Easel',
      prompt: 'a fox in snow, 雪の中の狐 🦊',
      negative_prompt: 'blur',
      seed: '42',
      provider: 'sketch',
      model: 'sketch-v1',
      steps: '12',
    });
    // Latin-1 values go in tEXt, the Unicode prompt in iTXt; every CRC checks out (readPngChunks verifies).
    const types = readPngChunks(image.data).map((chunk) => chunk.type);
    expect(types.slice(0, 2)).toEqual(['IHDR', 'tEXt']);
    expect(types.filter((type) => type === 'iTXt')).toHaveLength(1);
    // An independent reader (libvips) sees them too, and the pixels are untouched.
    const comments = (await sharp(image.data).metadata()).comments ?? [];
    expect(comments).toEqual(expect.arrayContaining([{ keyword: 'seed', text: '42' }]));
    expect((await sharp(image.data).raw().toBuffer()).equals(await sharp(source).raw().toBuffer())).toBe(true);
  });

  it('embeds nothing unless asked, and nothing in JPEG or WebP', async () => {
    const source = await noisy(16, 16).png().toBuffer();
    const task = {
      provider: 'sketch',
      model: 'm',
      params: { prompt: 'private', negative_prompt: null, width: 16, height: 16, steps: 1, guidance: 7, n: 1, seed: 1 },
    };
    const off = await finishImage(source, finishOptionsFor(task, { quality: 90, embedMetadata: false })(1));
    expect(readPngText(off.image.data)).toEqual({});
    const webpTask = { ...task, params: { ...task.params, output_format: 'webp' as const, output_quality: 70 } };
    const webp = await finishImage(source, finishOptionsFor(webpTask, { quality: 90, embedMetadata: true })(1));
    expect(metadataBlocks(webp.image.data, 'webp')).toEqual([]);
    expect(webp.image.data.includes('private')).toBe(false);
  });

  it('refuses a PNG whose text chunk was altered when reading it back', async () => {
    const png = withPngText(await noisy(4, 4).png().toBuffer(), [['seed', '1']]);
    expect(readPngText(png)).toEqual({ seed: '1' });
    const altered = Buffer.from(png);
    altered[altered.indexOf('seed') + 5] = '2'.charCodeAt(0);
    expect(() => readPngChunks(altered)).toThrow(/wrong CRC/);
  });
});

describe('thumbnails', () => {
  it('fits the longest side in 256 px as WebP', async () => {
    const source = await noisy(640, 320).png().toBuffer();
    const { thumbnail } = await finishImage(source, keep);
    expect(sniff(thumbnail.data)).toBe('webp');
    expect(thumbnail.contentType).toBe('image/webp');
    expect([thumbnail.width, thumbnail.height]).toEqual([256, 128]);
    expect(await sharp(thumbnail.data).metadata()).toMatchObject({ format: 'webp', width: 256, height: 128 });
    expect(thumbnail.sha256).toBe(sha256(thumbnail.data));
  });

  it('never enlarges a small image', async () => {
    const thumbnail = await makeThumbnail(await noisy(100, 80).png().toBuffer());
    expect([thumbnail.width, thumbnail.height]).toEqual([100, 80]);
  });

  it('lives under the image key plus .thumb.webp', () => {
    expect(thumbnailKey('tasks/ab/x-1-0.png')).toBe('tasks/ab/x-1-0.png.thumb.webp');
    expect(storedThumbnail({ storage_key: 'k.png', thumbnail_sha256: 'abc' })).toEqual({
      storage_key: 'k.png.thumb.webp',
      content_type: 'image/webp',
      sha256: 'abc',
    });
    expect(storedThumbnail({ storage_key: 'k.png', thumbnail_sha256: null })).toBeUndefined();
  });
});
