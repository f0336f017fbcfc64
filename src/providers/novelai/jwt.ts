/**
 * When a NovelAI access token runs out: the `exp` claim (seconds since the epoch) of the JWT
 * that `/user/login` returns. The signature is not checked: NovelAI checks it; Easel only
 * needs to know when to sign in again. Undefined when the token is no JWT or has no `exp`.
 */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { exp?: unknown };
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp) || claims.exp <= 0) return undefined;
    return new Date(claims.exp * 1000);
  } catch {
    return undefined;
  }
}
