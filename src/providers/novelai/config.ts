import { ConfigError, readInt, readString, readUrl, type Env } from '../../config/env.js';
import { NOVELAI_MODEL_IDS } from './models.js';

/** Settings of the NovelAI adapter; tokens and accounts live in the credential pool (`novelai`). */
export interface NovelAIConfig {
  /** The image host, `POST /ai/generate-image` (`NOVELAI_BASE_URL`). */
  imageBaseUrl: string;
  /** The account host, `POST /user/login` (`NOVELAI_API_BASE_URL`). */
  apiBaseUrl: string;
  /** The model a task gets when it names none. */
  defaultModel: string;
  /**
   * How long an account rests after NovelAI's "Concurrent generation is locked" 429: it sends
   * no Retry-After, and one generation takes seconds, so a short wait, not a failure.
   */
  concurrentWaitMs: number;
}

export const NOVELAI_DEFAULT_IMAGE_BASE_URL = 'https://image.novelai.net';
export const NOVELAI_DEFAULT_API_BASE_URL = 'https://api.novelai.net';

const trimSlash = (url: string) => url.replace(/\/+$/, '');

export function readNovelAIConfig(env: Env): NovelAIConfig {
  const defaultModel = readString(env, 'NOVELAI_DEFAULT_MODEL', 'nai-diffusion-4-5-full');
  if (!NOVELAI_MODEL_IDS.includes(defaultModel)) {
    throw new ConfigError(
      `NOVELAI_DEFAULT_MODEL=${JSON.stringify(defaultModel)} is not valid: expected one of ${NOVELAI_MODEL_IDS.join(', ')}`,
    );
  }
  return {
    imageBaseUrl: trimSlash(readUrl(env, 'NOVELAI_BASE_URL', ['https:', 'http:']) ?? NOVELAI_DEFAULT_IMAGE_BASE_URL),
    apiBaseUrl: trimSlash(readUrl(env, 'NOVELAI_API_BASE_URL', ['https:', 'http:']) ?? NOVELAI_DEFAULT_API_BASE_URL),
    defaultModel,
    concurrentWaitMs: readInt(env, 'NOVELAI_CONCURRENT_WAIT_MS', 3000, { min: 100, max: 600_000 }),
  };
}
