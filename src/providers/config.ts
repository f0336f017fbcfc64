import type { Env } from '../config/env.js';
import { readReplicateConfig, type ReplicateConfig } from './replicate/config.js';
import { readHuggingFaceConfig, type HuggingFaceConfig } from './huggingface/config.js';
import { readHfSpaceConfig, type HfSpaceConfig } from './hf-space/config.js';
import { readOpenAIConfig, type OpenAIConfig } from './openai/config.js';
import { readComfyUIConfig, type ComfyUIConfig } from './comfyui/config.js';

/**
 * Each hosted adapter's settings (base URLs, default models, waits), read from the environment
 * by the adapter's own reader so that its variables are documented next to the code using them.
 */
export interface ProvidersConfig {
  replicate: ReplicateConfig;
  huggingface: HuggingFaceConfig;
  hfSpace: HfSpaceConfig;
  openai: OpenAIConfig;
  comfyui: ComfyUIConfig;
}

export function readProvidersConfig(env: Env): ProvidersConfig {
  return {
    replicate: readReplicateConfig(env),
    huggingface: readHuggingFaceConfig(env),
    hfSpace: readHfSpaceConfig(env),
    openai: readOpenAIConfig(env),
    comfyui: readComfyUIConfig(env),
  };
}
