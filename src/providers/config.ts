import type { Env } from '../config/env.js';

/**
 * Each hosted adapter's settings (base URLs, default models, waits), read from the environment
 * by the adapter's own reader so that its variables are documented next to the code using them.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adapters add their fields
export interface ProvidersConfig {}

export function readProvidersConfig(_env: Env): ProvidersConfig {
  return {};
}
