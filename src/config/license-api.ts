import { ConfigError, readInt, readUrl, type Env } from './env.js';

/** The external licence API (docs/billing.md, "External billing"); absent = not used. */
export interface LicenseApiConfig {
  /** LICENSE_API_ENDPOINT: base URL; the contract's paths are appended to it. */
  endpoint: string;
  /** LICENSE_API_TIMEOUT_MS: per request; a slower answer counts as unreachable. */
  timeoutMs: number;
  /**
   * LICENSE_API_FAIL_OPEN: when the licence API cannot answer a balance check, true lets the
   * task run (a warning is logged; its charge waits as pending), false refuses the submit with
   * 503 BILLING_UNAVAILABLE.
   */
  failOpen: boolean;
}

export function readLicenseApi(env: Env): LicenseApiConfig | undefined {
  const endpoint = readUrl(env, 'LICENSE_API_ENDPOINT', ['http:', 'https:']);
  if (endpoint === undefined) return undefined;
  return {
    endpoint: endpoint.replace(/\/+$/, ''),
    timeoutMs: readInt(env, 'LICENSE_API_TIMEOUT_MS', 3000, { min: 100, max: 120_000 }),
    failOpen: readBoolean(env, 'LICENSE_API_FAIL_OPEN', true),
  };
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const value = env[name]?.trim().toLowerCase();
  if (!value) return fallback;
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(env[name])} is not valid: expected true or false`);
}
