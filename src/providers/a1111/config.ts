import { ConfigError, readInt, readString, type Env } from '../../config/env.js';

/**
 * Settings of the AUTOMATIC1111 / Forge / SD.Next adapter. The servers themselves are the
 * credentials of pool `a1111` (`A1111_URLS`, or the admin credential routes); these settings
 * apply to all of them.
 */
export interface A1111Config {
  /**
   * The model ids tasks may name (`A1111_MODELS`). `default` runs whatever checkpoint the server
   * has loaded; any other id is sent as `override_settings.sd_model_checkpoint`, so it must be a
   * checkpoint title the servers know. Read from config: nothing is asked of a server at start.
   */
  models: string[];
  /** How often `/sdapi/v1/progress` is polled while a generation runs (`A1111_PROGRESS_INTERVAL_MS`). */
  progressIntervalMs: number;
  /** How long a server that did not answer at all rests before it is tried again (`A1111_UNREACHABLE_COOLDOWN_MS`). */
  unreachableCooldownMs: number;
  /** Largest image side a task may ask for (`A1111_MAX_SIZE`). */
  maxSize: number;
}

export const A1111_DEFAULT_MODEL = 'default';

export function readA1111Config(env: Env): A1111Config {
  const models = readString(env, 'A1111_MODELS', A1111_DEFAULT_MODEL)
    .split(',')
    .map((model) => model.trim())
    .filter(Boolean);
  if (models.length === 0) throw new ConfigError('A1111_MODELS: list at least one model, e.g. default');
  const tooLong = models.find((model) => model.length > 200);
  if (tooLong) throw new ConfigError(`A1111_MODELS: a model id is longer than 200 characters`);
  return {
    models: [...new Set(models)],
    progressIntervalMs: readInt(env, 'A1111_PROGRESS_INTERVAL_MS', 1000, { min: 100, max: 60_000 }),
    unreachableCooldownMs: readInt(env, 'A1111_UNREACHABLE_COOLDOWN_MS', 30_000, { min: 100, max: 3_600_000 }),
    maxSize: readInt(env, 'A1111_MAX_SIZE', 2048, { min: 64, max: 8192 }),
  };
}
