import { ConfigError, type Env } from '../../config/env.js';

/**
 * A self-hosted backend (an AUTOMATIC1111/Forge or ComfyUI server on the user's own GPU) is a
 * credential of its pool (`a1111`, `comfyui`): its secret is the server's base URL, with basic
 * auth as URL user info when the server needs it (`http://user:pass@gpu2:7860`). That way the
 * credential pool does for backends what it does for tokens: per-backend concurrency, a claim
 * only when a backend has a free slot, and cooldown for one that does not answer.
 */
export interface Backend {
  /** Without user info or trailing slash, e.g. `http://gpu2:7860`; safe to log. */
  baseUrl: string;
  /** `Basic …` when the URL carried user info. */
  authorization?: string;
}

export class BackendUrlError extends Error {
  override name = 'BackendUrlError';
}

// The value is never quoted back: it may carry a password.
const NOT_A_URL = 'a backend must be an http(s) URL such as http://gpu1:7860';

export function parseBackend(secret: string): Backend {
  let url: URL;
  try {
    url = new URL(secret.trim());
  } catch {
    throw new BackendUrlError(NOT_A_URL);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BackendUrlError(NOT_A_URL);
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  const baseUrl = url.href.replace(/\/+$/, '');
  if (!username && !password) return { baseUrl };
  return { baseUrl, authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
}

/** The entries of a comma-separated URL list such as `A1111_URLS`, each checked. */
export function parseBackendList(env: Env, name: string): string[] {
  const entries = (env[name] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (const entry of entries) {
    try {
      parseBackend(entry);
    } catch (error) {
      throw new ConfigError(`${name}: ${(error as Error).message}`);
    }
  }
  return entries;
}
