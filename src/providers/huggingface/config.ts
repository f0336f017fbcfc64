import { ConfigError, readInt, readString, readUrl, type Env } from '../../config/env.js';

/** Settings of the Hugging Face Inference (router, hf-inference) adapter. */
export interface HuggingFaceConfig {
  /** The router's root, as huggingface.js has it; the adapter adds `/hf-inference/models/{model}`. */
  baseUrl: string;
  /** The model a task gets when it names none; always first in `models`. */
  defaultModel: string;
  /** Every model id tasks may name (`owner/name`), the default first. */
  models: string[];
  /** Longest single wait on a "model is loading" 503, whatever `estimated_time` says. */
  loadingWaitMaxMs: number;
  /** How many "model is loading" answers one image waits out before giving up (retryable). */
  loadingRetries: number;
}

export const HF_DEFAULT_BASE_URL = 'https://router.huggingface.co';
export const HF_DEFAULT_MODEL = 'black-forest-labs/FLUX.1-schnell';
/** A Hub repository id: `owner/name`, the characters the Hub allows. */
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkModelId(name: string, id: string): string {
  if (!MODEL_ID.test(id)) {
    throw new ConfigError(
      `${name} has ${JSON.stringify(id)}: expected a Hub model id owner/name, e.g. ${HF_DEFAULT_MODEL}`,
    );
  }
  return id;
}

export function readHuggingFaceConfig(env: Env): HuggingFaceConfig {
  const baseUrl = (readUrl(env, 'HF_BASE_URL', ['http:', 'https:']) ?? HF_DEFAULT_BASE_URL).replace(/\/+$/, '');
  const defaultModel = checkModelId('HF_DEFAULT_MODEL', readString(env, 'HF_DEFAULT_MODEL', HF_DEFAULT_MODEL));
  const extra = readString(env, 'HF_MODELS', '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '')
    .map((id) => checkModelId('HF_MODELS', id));
  return {
    baseUrl,
    defaultModel,
    models: [...new Set([defaultModel, ...extra])],
    loadingWaitMaxMs: readInt(env, 'HF_LOADING_WAIT_MAX_MS', 120_000, { min: 0, max: 600_000 }),
    loadingRetries: readInt(env, 'HF_LOADING_RETRIES', 3, { min: 0, max: 20 }),
  };
}
