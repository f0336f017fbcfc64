import { readProvidersConfig, type ProvidersConfig } from './config.js';
import { createOpenAIProvider } from './openai/index.js';
import { ProviderRegistry } from './registry.js';
import { createReplicateProvider } from './replicate/index.js';
import { createSketchProvider } from './sketch/index.js';
import { createHuggingFaceProvider } from './huggingface/index.js';
import { createHfSpaceProvider } from './hf-space/index.js';
import { createNovelAIProvider } from './novelai/index.js';
import type { TokenCache } from './token-cache.js';
import { createJimengProvider } from './volcengine/index.js';
import { createArkProvider } from './ark/index.js';
import { createA1111Provider } from './a1111/index.js';
import { createComfyUIProvider } from './comfyui/index.js';

/** What providers may be handed at registration besides their config (capabilities, not infrastructure). */
export interface ProviderDeps {
  /** The per-credential cache of sign-in tokens (NovelAI); without it every attempt signs in. */
  tokens?: TokenCache;
}

/** Every provider this build knows, configured; hosted ones need credentials in the pool to run. */
export function createProviderRegistry(
  config: ProvidersConfig = readProvidersConfig({}),
  deps: ProviderDeps = {},
): ProviderRegistry {
  return new ProviderRegistry([
    createSketchProvider(),
    createReplicateProvider(config.replicate),
    createHuggingFaceProvider(config.huggingface),
    createHfSpaceProvider(config.hfSpace),
    createOpenAIProvider(config.openai),
    createNovelAIProvider(config.novelai, deps.tokens ? { tokens: deps.tokens } : {}),
    createJimengProvider(config.jimeng),
    createArkProvider(config.ark),
    createA1111Provider(config.a1111),
    createComfyUIProvider(config.comfyui),
  ]);
}
