import { readProvidersConfig, type ProvidersConfig } from './config.js';
import { createOpenAIProvider } from './openai/index.js';
import { ProviderRegistry } from './registry.js';
import { createSketchProvider } from './sketch/index.js';

/** Every provider this build knows, configured; hosted ones need credentials in the pool to run. */
export function createProviderRegistry(config: ProvidersConfig = readProvidersConfig({})): ProviderRegistry {
  return new ProviderRegistry([createSketchProvider(), createOpenAIProvider(config.openai)]);
}
