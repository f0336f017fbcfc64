/** The formats Easel can store a generated image in. Pure: no I/O. */

export const OutputFormat = { png: 'png', webp: 'webp', jpeg: 'jpeg' } as const;
export type OutputFormat = (typeof OutputFormat)[keyof typeof OutputFormat];

export const OUTPUT_FORMATS: readonly OutputFormat[] = Object.values(OutputFormat);

export const OUTPUT_CONTENT_TYPES: Record<OutputFormat, string> = {
  png: 'image/png',
  webp: 'image/webp',
  jpeg: 'image/jpeg',
};

/** PNG is lossless: a quality means something only for these. */
export const isLossy = (format: OutputFormat): boolean => format !== 'png';

/** sharp's own default is 80; 90 keeps generated detail (fine gradients, text) visibly intact. */
export const DEFAULT_OUTPUT_QUALITY = 90;
