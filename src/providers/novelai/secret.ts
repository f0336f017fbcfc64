/**
 * What a `novelai` pool credential holds. Two forms:
 *
 * - a token, used as `Authorization: Bearer` as it is: a persistent API token (`pst-…`, made
 *   in NovelAI's account settings) or an access token (a JWT from a login);
 * - an account, as JSON `{"email": "…", "password": "…"}`: Easel signs in with it and keeps
 *   the access token it gets in the token cache, renewing it before it runs out.
 *
 * A secret that starts with `{` must be a complete account: a broken one is refused rather
 * than sent to NovelAI as a token.
 */
export type NovelAISecret = { kind: 'token'; token: string } | { kind: 'account'; email: string; password: string };

export class NovelAISecretError extends Error {
  override name = 'NovelAISecretError';
}

export function parseNovelAISecret(secret: string): NovelAISecret {
  const trimmed = secret.trim();
  if (!trimmed.startsWith('{')) return { kind: 'token', token: trimmed };
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new NovelAISecretError('the credential looks like JSON but does not parse: use {"email":"…","password":"…"}');
  }
  const { email, password } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof email !== 'string' || !email.includes('@') || typeof password !== 'string' || password === '') {
    throw new NovelAISecretError('the credential JSON needs an "email" with an @ and a non-empty "password"');
  }
  return { kind: 'account', email, password };
}

/**
 * The account form of the environment's NOVELAI_EMAIL and NOVELAI_PASSWORD. The email comes
 * last so that the credential's display hint (its last 4 characters) shows part of the
 * address, never of the password.
 */
export const accountSecret = (email: string, password: string): string =>
  JSON.stringify({ password, email: email.trim() });
