import { readInt, readString, readUrl, type Env } from '../../config/env.js';

/** Settings of the Jimeng adapter; the key pairs live in the credential pool (`volcengine`). */
export interface JimengConfig {
  /** The visual API root (`VOLCENGINE_VISUAL_BASE_URL`), no trailing slash. */
  baseUrl: string;
  /** Signature region (`VOLCENGINE_REGION`): the visual API is served from cn-north-1 only. */
  region: string;
  /** Pause between GetResult polls (`VOLCENGINE_POLL_INTERVAL_MS`); the docs suggest 2–5 s. */
  pollIntervalMs: number;
}

export const VOLCENGINE_VISUAL_DEFAULT_BASE_URL = 'https://visual.volcengineapi.com';
/** The signing service of the visual API: fixed by the API reference ("Region为cn-north-1，Service为cv"). */
export const VOLCENGINE_VISUAL_SERVICE = 'cv';

export function readJimengConfig(env: Env): JimengConfig {
  return {
    baseUrl: (
      readUrl(env, 'VOLCENGINE_VISUAL_BASE_URL', ['https:', 'http:']) ?? VOLCENGINE_VISUAL_DEFAULT_BASE_URL
    ).replace(/\/+$/, ''),
    region: readString(env, 'VOLCENGINE_REGION', 'cn-north-1'),
    pollIntervalMs: readInt(env, 'VOLCENGINE_POLL_INTERVAL_MS', 2000, { min: 10, max: 60_000 }),
  };
}
