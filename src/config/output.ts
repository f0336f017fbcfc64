import { DEFAULT_OUTPUT_QUALITY, OUTPUT_FORMATS, type OutputFormat } from '../domain/output-format.js';
import { readChoice, readInt, type Env } from './env.js';

/** How generated images are stored (docs/images.md). */
export interface OutputConfig {
  /** EASEL_OUTPUT_FORMAT: the format of tasks that name none; unset keeps what the provider returned. */
  format: OutputFormat | undefined;
  /** EASEL_OUTPUT_QUALITY: the quality of JPEG and WebP output when a task names none. */
  quality: number;
  /**
   * EASEL_EMBED_METADATA: write prompt, seed, model and steps into PNG text chunks. Off by
   * default: a prompt can be private, and an image travels further than its task.
   */
  embedMetadata: boolean;
}

export function readOutputConfig(env: Env): OutputConfig {
  const format = env.EASEL_OUTPUT_FORMAT?.trim()
    ? readChoice(env, 'EASEL_OUTPUT_FORMAT', 'png', OUTPUT_FORMATS)
    : undefined;
  return {
    format,
    quality: readInt(env, 'EASEL_OUTPUT_QUALITY', DEFAULT_OUTPUT_QUALITY, { min: 1, max: 100 }),
    embedMetadata: readChoice(env, 'EASEL_EMBED_METADATA', 'false', ['true', 'false']) === 'true',
  };
}
