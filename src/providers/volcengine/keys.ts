import { CredentialError } from '../errors.js';
import type { VolcengineKeys } from './signer.js';

/**
 * A `volcengine` pool credential holds both halves of a Volcengine access key in one secret:
 * `<SecretAccessKey>:<AccessKeyId>`. The key id goes last on purpose: the credential list shows
 * the last four characters of a secret as its hint, and those should be part of the key id (which
 * the Volcengine console shows openly), never of the secret key. Neither half contains `:`
 * (the SK is base64 text, the AK letters and digits).
 */
export const VOLCENGINE_SECRET_FORM = '<SecretAccessKey>:<AccessKeyId>';

/** Access key ids start `AKLT` (long-term) or `AKTP` (temporary, STS). */
const LOOKS_LIKE_KEY_ID = /^AK[A-Z]{2}/;

/** The pool secret for a key pair, in the documented form. */
export function volcengineSecret(accessKeyId: string, secretAccessKey: string): string {
  return `${secretAccessKey.trim()}:${accessKeyId.trim()}`;
}

/**
 * The key pair in a pool secret. A malformed secret is a credential error (the credential is
 * disabled with the reason); the message names the expected form and never quotes the secret.
 */
export function parseVolcengineSecret(secret: string): VolcengineKeys {
  const parts = secret.split(':').map((part) => part.trim());
  if (parts.length !== 2 || parts.some((part) => part === '')) {
    throw new CredentialError(
      'PROVIDER_CREDENTIAL_REJECTED',
      `volcengine: the credential is not in the form ${VOLCENGINE_SECRET_FORM}`,
    );
  }
  const [secretAccessKey, accessKeyId] = parts as [string, string];
  if (LOOKS_LIKE_KEY_ID.test(secretAccessKey) && !LOOKS_LIKE_KEY_ID.test(accessKeyId)) {
    throw new CredentialError(
      'PROVIDER_CREDENTIAL_REJECTED',
      `volcengine: the credential has its halves swapped: expected ${VOLCENGINE_SECRET_FORM} (the AKLT… key id last)`,
    );
  }
  return { accessKeyId, secretAccessKey };
}
