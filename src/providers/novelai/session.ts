import { CredentialError, PermanentError, RetryableError } from '../errors.js';
import { providerFetch, readJson } from '../http.js';
import type { TokenCache } from '../token-cache.js';
import type { Credential, RunContext } from '../types.js';
import { deriveAccessKey } from './access-key.js';
import { novelAIFailure } from './errors.js';
import { jwtExpiry } from './jwt.js';
import { NovelAISecretError, parseNovelAISecret } from './secret.js';

/** A cached access token with less than this left is renewed before use (they last ~30 days). */
export const RENEW_BELOW_MS = 10 * 24 * 60 * 60 * 1000;

export interface SessionDeps {
  apiBaseUrl: string;
  tokens: TokenCache;
  concurrentWaitMs: number;
}

/** `renewable`: it came from the cache, so a refusal may mean it was revoked: sign in again once. */
export interface Bearer {
  token: string;
  renewable: boolean;
}

type SessionContext = Pick<RunContext, 'fetch' | 'signal' | 'log'>;

const WHAT = 'novelai login';

/**
 * The bearer token for this attempt's credential: a token credential as it is; an account's
 * cached access token while it has 10 days or more left; otherwise a fresh login, cached for
 * the next attempts. A cache that fails (damaged entry, database trouble) only costs a login:
 * it never fails the task.
 */
export async function bearerFor(
  credential: Credential,
  ctx: SessionContext,
  deps: SessionDeps,
  options: { skipCache?: boolean } = {},
): Promise<Bearer> {
  let secret;
  try {
    secret = parseNovelAISecret(credential.secret);
  } catch (error) {
    if (error instanceof NovelAISecretError)
      throw new CredentialError('PROVIDER_CREDENTIAL_REJECTED', `novelai: ${error.message}`);
    throw error;
  }
  if (secret.kind === 'token') return { token: secret.token, renewable: false };
  const cached = options.skipCache ? undefined : await readCache(credential, ctx, deps.tokens);
  if (cached) return { token: cached, renewable: true };
  const token = await login(secret.email, secret.password, ctx, deps);
  const expiresAt = jwtExpiry(token) ?? null;
  try {
    await deps.tokens.write(credential.id, token, expiresAt);
  } catch (error) {
    ctx.log.warn(
      { err: error, credential: credential.label },
      'novelai: could not cache the access token; the next attempt signs in again',
    );
  }
  ctx.log.info({ credential: credential.label, expiresAt }, 'novelai: signed in');
  return { token, renewable: false };
}

async function readCache(credential: Credential, ctx: SessionContext, tokens: TokenCache): Promise<string | undefined> {
  let entry;
  try {
    entry = await tokens.read(credential.id);
  } catch (error) {
    ctx.log.warn(
      { err: error, credential: credential.label },
      'novelai: the token cache could not be read; signing in',
    );
    return undefined;
  }
  if (!entry) return undefined;
  if ('damaged' in entry) {
    ctx.log.warn(
      { credential: credential.label, reason: entry.damaged },
      'novelai: cached token is damaged; signing in again',
    );
    return undefined;
  }
  // The JWT says when it ends; a cached "token" that is no JWT was damaged some other way.
  if (!jwtExpiry(entry.token)) {
    ctx.log.warn({ credential: credential.label }, 'novelai: cached token is not a readable JWT; signing in again');
    return undefined;
  }
  if (entry.remainingMs === null || entry.remainingMs < RENEW_BELOW_MS) {
    ctx.log.info(
      { credential: credential.label, expiresAt: entry.expiresAt },
      'novelai: cached token expires within 10 days; renewing',
    );
    return undefined;
  }
  return entry.token;
}

/**
 * `POST /user/login {key}` → 201 `{accessToken}`. The key is derived from the lowercased email
 * first; an address with capitals that is refused is tried once more as typed, since clients
 * differ on this (see access-key.ts). A refused account is a credential error.
 */
async function login(email: string, password: string, ctx: SessionContext, deps: SessionDeps): Promise<string> {
  const asTyped = email.trim();
  const forms = asTyped === asTyped.toLowerCase() ? [true] : [true, false];
  let refused: CredentialError | undefined;
  for (const lowercase of forms) {
    const key = await deriveAccessKey(email, password, lowercase);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const token = await exchangeKey(key, ctx, deps);
    if (typeof token === 'string') return token;
    refused = token;
  }
  throw refused!;
}

/** The access token for `key`, or the credential error saying why NovelAI refused it. */
async function exchangeKey(key: string, ctx: SessionContext, deps: SessionDeps): Promise<string | CredentialError> {
  const response = await providerFetch(ctx, `${deps.apiBaseUrl}/user/login`, {
    what: WHAT,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ key }),
  });
  if (!response.ok) {
    const failure = await novelAIFailure(response, WHAT, deps.concurrentWaitMs);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (failure instanceof CredentialError) return failure;
    // A 400 or 404 at login also means this account cannot sign in: no retry of the task fixes
    // it, another account may.
    if (failure instanceof PermanentError) return new CredentialError('PROVIDER_CREDENTIAL_REJECTED', failure.message);
    throw failure;
  }
  const body = await readJson<{ accessToken?: unknown }>(ctx, response, WHAT);
  if (typeof body?.accessToken !== 'string' || body.accessToken === '') {
    throw new RetryableError('PROVIDER_BAD_OUTPUT', `${WHAT}: the answer has no accessToken`);
  }
  return body.accessToken;
}
