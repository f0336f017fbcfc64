import type { Env } from '../config/env.js';
import { readReplicateConfig, type ReplicateConfig } from './replicate/config.js';
import { readHuggingFaceConfig, type HuggingFaceConfig } from './huggingface/config.js';
import { readHfSpaceConfig, type HfSpaceConfig } from './hf-space/config.js';
import { readOpenAIConfig, type OpenAIConfig } from './openai/config.js';
import { readNovelAIConfig, type NovelAIConfig } from './novelai/config.js';
import { readJimengConfig, type JimengConfig } from './volcengine/config.js';
import { readArkConfig, type ArkConfig } from './ark/config.js';
import { readA1111Config, type A1111Config } from './a1111/config.js';
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
  novelai: NovelAIConfig;
  jimeng: JimengConfig;
  ark: ArkConfig;
  a1111: A1111Config;
  comfyui: ComfyUIConfig;
}

export function readProvidersConfig(env: Env): ProvidersConfig {
  return {
    replicate: readReplicateConfig(env),
    huggingface: readHuggingFaceConfig(env),
    hfSpace: readHfSpaceConfig(env),
    openai: readOpenAIConfig(env),
    novelai: readNovelAIConfig(env),
    jimeng: readJimengConfig(env),
    ark: readArkConfig(env),
    a1111: readA1111Config(env),
    comfyui: readComfyUIConfig(env),
  };
}
