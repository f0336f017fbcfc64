import { ConfigError, readString, readUrl, type Env } from '../../config/env.js';
import { ARK_MODELS } from './models.js';

/** Settings of the Ark images adapter; the API keys live in the credential pool (`ark`). */
export interface ArkConfig {
  /** With `/api/v3`, as the official SDK's base URL (`ARK_BASE_URL`), no trailing slash. */
  baseUrl: string;
  /**
   * Easel model name → the `model` Ark is sent: a dated model id or an endpoint id (`ep-…`) of
   * the account. Defaults to each model's dated id; `ARK_MODEL_ENDPOINTS` overrides some.
   */
  modelIds: Record<string, string>;
}

export const ARK_DEFAULT_BASE_URL = 'https://ark.cn-beijing.volces.com/api/v3';

/**
 * `ARK_MODEL_ENDPOINTS=doubao-seedream-3.0-t2i=ep-20250101-abcde,doubao-seedream-4.0=doubao-seedream-4-0-250828`:
 * accounts that may not call models by id (Ark's `ModelIDAccessDisabled`) name their endpoints here,
 * and a newer dated version can be pinned without a release.
 */
function readModelIds(env: Env): Record<string, string> {
  const ids: Record<string, string> = Object.fromEntries(ARK_MODELS.map((model) => [model.info.id, model.apiModel]));
  const raw = readString(env, 'ARK_MODEL_ENDPOINTS', '');
  for (const entry of raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')) {
    const [name, target, ...rest] = entry.split('=').map((part) => part.trim());
    if (!name || !target || rest.length > 0 || !/^[A-Za-z0-9._-]+$/.test(target)) {
      throw new ConfigError(
        `ARK_MODEL_ENDPOINTS: ${JSON.stringify(entry)} is not <model>=<model id or ep-… endpoint id>`,
      );
    }
    if (!(name in ids)) {
      throw new ConfigError(
        `ARK_MODEL_ENDPOINTS: unknown model ${JSON.stringify(name)}; expected one of ${Object.keys(ids).join(', ')}`,
      );
    }
    ids[name] = target;
  }
  return ids;
}

export function readArkConfig(env: Env): ArkConfig {
  return {
    baseUrl: (readUrl(env, 'ARK_BASE_URL', ['https:', 'http:']) ?? ARK_DEFAULT_BASE_URL).replace(/\/+$/, ''),
    modelIds: readModelIds(env),
  };
}
