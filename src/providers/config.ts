import type { Env } from '../config/env.js';
import { readOpenAIConfig, type OpenAIConfig } from './openai/config.js';

/**
 * Each hosted adapter's settings (base URLs, default models, waits), read from the environment
 * by the adapter's own reader so that its variables are documented next to the code using them.
 */
export interface ProvidersConfig {
  openai: OpenAIConfig;
}

export function readProvidersConfig(env: Env): ProvidersConfig {
  return {
    openai: readOpenAIConfig(env),
  };
}
