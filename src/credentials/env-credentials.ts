import type { Env } from '../config/env.js';

/** A provider secret found in the environment, with a label saying which variable held it. */
export interface EnvCredential {
  provider: string;
  label: string;
  secret: string;
}

/**
 * The forms users already have in their `.env`: `REPLICATE_API_TOKEN`; `HUGGING_FACE_TOKENS=a,b,c`,
 * `HUGGING_FACE_TOKEN_1..N` and `HUGGING_FACE_TOKEN`; `OPENAI_API_KEY`. Pure. A secret listed
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
  return found;
}
