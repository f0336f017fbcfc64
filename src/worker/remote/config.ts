import { loadConfig } from '../../config/config.js';
import { ConfigError, readString, readUrl, type Env } from '../../config/env.js';
import { createProviderRegistry } from '../../providers/index.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import { looksLikeWorkerToken } from '../../auth/worker-tokens.js';
import { LocalCredentials } from './local-credentials.js';

export interface RemoteWorkerConfig {
  url: string;
  token: string;
  registry: ProviderRegistry;
  providers: string[];
  credentials: LocalCredentials;
  concurrency: number;
  taskTimeoutMs: number;
  shutdownGraceMs: number;
}

/**
 * A remote worker's settings: the server and token (flags, or `EASEL_REMOTE_URL` and
 * `EASEL_WORKER_TOKEN`), which providers to serve (`EASEL_WORKER_PROVIDERS`, default: every one
 * this machine can run), and the worker settings a local worker reads. No DATABASE_URL: a remote
 * worker never opens the database.
 */
export function readRemoteWorkerConfig(
  env: Env,
  flags: { remote?: string | undefined; token?: string | undefined },
): RemoteWorkerConfig {
  const url = flags.remote ?? readUrl(env, 'EASEL_REMOTE_URL', ['http:', 'https:']);
  if (!url)
    throw new ConfigError('--remote (or EASEL_REMOTE_URL) must name the Easel server, e.g. https://easel.example');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`--remote: ${url} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError('--remote must be an http(s) URL');
  }
  const token = (flags.token ?? readString(env, 'EASEL_WORKER_TOKEN', '')).trim();
  if (!token)
    throw new ConfigError('--token (or EASEL_WORKER_TOKEN) is required: create one with `easel worker-tokens create`');
  if (!looksLikeWorkerToken(token)) {
    throw new ConfigError('the worker token must look like easel_wk_… (an API key is not a worker token)');
  }
  // The local settings a worker reads, without the database's (a remote worker has none).
  const { DATABASE_URL: _ignored, ...rest } = env;
  const config = loadConfig(rest);
  const registry = createProviderRegistry(config.providers);
  const credentials = new LocalCredentials(env);
  const runnable = registry
    .list()
    .filter((provider) => !provider.credentialPool || credentials.has(provider.credentialPool))
    .map((provider) => provider.id);
  const asked = readString(env, 'EASEL_WORKER_PROVIDERS', '')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  for (const id of asked) {
    const provider = registry.get(id);
    if (!provider) throw new ConfigError(`EASEL_WORKER_PROVIDERS: this build has no provider ${id}`);
    if (!runnable.includes(id)) {
      throw new ConfigError(
        `EASEL_WORKER_PROVIDERS: ${id} needs a ${provider.credentialPool} credential in this machine's environment`,
      );
    }
  }
  const providers = asked.length > 0 ? asked : runnable;
  if (providers.length === 0) throw new ConfigError('this worker can run no provider');
  return {
    url: parsed.href.replace(/\/+$/, ''),
    token,
    registry,
    providers,
    credentials,
    concurrency: config.worker.concurrency,
    taskTimeoutMs: config.worker.taskTimeoutMs,
    shutdownGraceMs: config.worker.shutdownGraceMs,
  };
}
