import { ProviderRegistry } from './registry.js';
import { createSketchProvider } from './sketch/index.js';

/** Every provider this build knows. Hosted providers join here as they arrive. */
export function createProviderRegistry(): ProviderRegistry {
  return new ProviderRegistry([createSketchProvider()]);
}
