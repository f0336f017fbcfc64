import { readProvidersConfig, type ProvidersConfig } from './config.js';
import { createOpenAIProvider } from './openai/index.js';
import { ProviderRegistry } from './registry.js';
import { createReplicateProvider } from './replicate/index.js';
import { createSketchProvider } from './sketch/index.js';
import { createHuggingFaceProvider } from './huggingface/index.js';
import { createHfSpaceProvider } from './hf-space/index.js';
import { createComfyUIProvider } from './comfyui/index.js';

/** Every provider this build knows, configured; hosted ones need credentials in the pool to run. */
export function createProviderRegistry(config: ProvidersConfig = readProvidersConfig({})): ProviderRegistry {
  return new ProviderRegistry([
    createSketchProvider(),
    createReplicateProvider(config.replicate),
    createHuggingFaceProvider(config.huggingface),
    createHfSpaceProvider(config.hfSpace),
    createOpenAIProvider(config.openai),
    createComfyUIProvider(config.comfyui),
  ]);
}
