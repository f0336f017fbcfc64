import { readInt, readString, readUrl, ConfigError, type Env } from '../../config/env.js';

/** The Animagine XL 4.0 build that existing deployments run (pinned version: a community model). */
export const DEFAULT_REPLICATE_MODEL =
  'aisha-ai-official/animagine-xl-4.0:057e2276ac5dcd8d1575dc37b131f903df9c10c41aed53d47cd7d4f068c19fa5';

export interface ReplicateConfig {
  /** API root including `/v1`, as the official clients take it (no trailing slash). */
  baseUrl: string;
  /** `owner/name` (official model) or `owner/name:version` (pinned version); listed first. */
  defaultModel: string;
  /** `Prefer: wait=N` on create: how long Replicate may hold the create request open (1–60 s). */
  waitSeconds: number;
  /** Pause between polls of an unfinished prediction. */
  pollIntervalMs: number;
}

/** `owner/name` or `owner/name:64-hex version`, the two forms Replicate's API accepts. */
export const MODEL_REF_PATTERN = /^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*(:[0-9a-f]{64})?$/i;

export function readReplicateConfig(env: Env): ReplicateConfig {
  const baseUrl = (readUrl(env, 'REPLICATE_BASE_URL', ['http:', 'https:']) ?? 'https://api.replicate.com/v1').replace(
    /\/+$/,
    '',
  );
  const defaultModel = readString(env, 'REPLICATE_DEFAULT_MODEL', DEFAULT_REPLICATE_MODEL);
  if (!MODEL_REF_PATTERN.test(defaultModel)) {
    throw new ConfigError(
      `REPLICATE_DEFAULT_MODEL=${JSON.stringify(defaultModel)} is not valid: expected owner/name or owner/name:<64-hex version>, e.g. black-forest-labs/flux-schnell`,
    );
  }
  return {
    baseUrl,
    defaultModel,
    waitSeconds: readInt(env, 'REPLICATE_WAIT_SECONDS', 60, { min: 1, max: 60 }),
    pollIntervalMs: readInt(env, 'REPLICATE_POLL_INTERVAL_MS', 1000, { min: 10, max: 60_000 }),
  };
}
