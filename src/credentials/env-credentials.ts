import { ConfigError, type Env } from '../config/env.js';
import { parseBackend, parseBackendList } from '../providers/self-hosted/backend.js';
import { accountSecret } from '../providers/novelai/secret.js';
import { volcengineSecret } from '../providers/volcengine/keys.js';

/** A provider secret found in the environment, with a label saying which variable held it. */
export interface EnvCredential {
  provider: string;
  label: string;
  secret: string;
}

/**
 * The forms users already have in their `.env`: `REPLICATE_API_TOKEN`; `HUGGING_FACE_TOKENS=a,b,c`,
 * `HUGGING_FACE_TOKEN_1..N` and `HUGGING_FACE_TOKEN`; `OPENAI_API_KEY`; `NOVELAI_TOKEN`, and
 * `NOVELAI_EMAIL` + `NOVELAI_PASSWORD` as a NovelAI account (see providers/novelai/secret.ts);
 * `VOLCENGINE_ACCESS_KEY` with `VOLCENGINE_SECRET_KEY` (one pair); `ARK_API_KEY`; and the user's
 * own GPU servers, `A1111_URLS` and `COMFYUI_URLS` (see providers/self-hosted/backend.ts). Pure. A secret listed
 * twice is returned twice; the store's unique fingerprint keeps one.
 */
export function credentialsFromEnv(env: Env): EnvCredential[] {
  const found: EnvCredential[] = [];
  const add = (provider: string, label: string, value: string | undefined) => {
    const secret = value?.trim();
    if (secret) found.push({ provider, label, secret });
  };
  add('replicate', 'env REPLICATE_API_TOKEN', env.REPLICATE_API_TOKEN);
  (env.HUGGING_FACE_TOKENS ?? '')
    .split(',')
    .forEach((token, index) => add('huggingface', `env HUGGING_FACE_TOKENS[${index + 1}]`, token));
  const numbered = Object.keys(env)
    .map((name) => /^HUGGING_FACE_TOKEN_(\d+)$/.exec(name))
    .filter((match) => match !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  for (const match of numbered) add('huggingface', `env ${match[0]}`, env[match[0]]);
  add('huggingface', 'env HUGGING_FACE_TOKEN', env.HUGGING_FACE_TOKEN);
  add('openai', 'env OPENAI_API_KEY', env.OPENAI_API_KEY);
  add('novelai', 'env NOVELAI_TOKEN', env.NOVELAI_TOKEN);
  // An account signs in for its access token (cached per credential); one generation at a time,
  // as NovelAI allows, is the pool's default concurrency of 1.
  const novelaiEmail = env.NOVELAI_EMAIL?.trim();
  if (novelaiEmail && env.NOVELAI_PASSWORD) {
    add('novelai', `env NOVELAI_EMAIL ${novelaiEmail}`, accountSecret(novelaiEmail, env.NOVELAI_PASSWORD));
  }
  // One credential holds both halves, as `<SK>:<AK>` (providers/volcengine/keys.ts): the key id
  // last, so the credential's shown hint is part of it, never of the secret key.
  const accessKey = env.VOLCENGINE_ACCESS_KEY?.trim();
  const secretKey = env.VOLCENGINE_SECRET_KEY?.trim();
  if (Boolean(accessKey) !== Boolean(secretKey)) {
    throw new ConfigError('VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY must be set together (one key pair)');
  }
  if (accessKey && secretKey) {
    add('volcengine', `env VOLCENGINE_ACCESS_KEY ${accessKey}`, volcengineSecret(accessKey, secretKey));
  }
  add('ark', 'env ARK_API_KEY', env.ARK_API_KEY);
  for (const [provider, variable] of [
    ['a1111', 'A1111_URLS'],
    ['comfyui', 'COMFYUI_URLS'],
  ] as const) {
    parseBackendList(env, variable).forEach((url, index) =>
      add(provider, `env ${variable}[${index + 1}] ${parseBackend(url).baseUrl}`, url),
    );
  }
  return found;
}
