import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Provider secrets encrypted at rest: AES-256-GCM, a fresh random 12-byte nonce per secret, so
 * the same secret sealed twice gives different ciphertexts, and the GCM tag makes any change to
 * a stored ciphertext fail to open rather than decrypt to garbage.
 *
 * Stored format (bytea): version byte 0x01 | nonce (12) | tag (16) | ciphertext. A later format
 * gets a new version byte; `open` refuses versions it does not know.
 */

export const SECRET_KEY_BYTES = 32;
const FORMAT_V1 = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES + TAG_BYTES;

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

export class SecretBox {
  readonly #key: Buffer;
  readonly #fingerprintKey: Buffer;

  constructor(key: Buffer) {
    if (key.length !== SECRET_KEY_BYTES) throw new SecretBoxError(`the secret key must be ${SECRET_KEY_BYTES} bytes`);
    this.#key = Buffer.from(key);
    // A separate key for fingerprints, so the HMAC never reuses the encryption key itself.
    this.#fingerprintKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'easel credential fingerprint v1', 32));
  }

  /** A key for another purpose (e.g. signing image URLs), derived so this key is never reused as is. */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), purpose, 32));
  }

  seal(secret: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([FORMAT_V1]), nonce, cipher.getAuthTag(), ciphertext]);
  }

  /** Throws SecretBoxError when the box was sealed under another key or was changed since. */
  open(sealed: Buffer): string {
    if (sealed.length < HEADER_BYTES || sealed[0] !== FORMAT_V1) {
      throw new SecretBoxError('the stored secret is not in a format this Easel knows');
    }
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const tag = sealed.subarray(1 + NONCE_BYTES, HEADER_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(sealed.subarray(HEADER_BYTES)), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new SecretBoxError(
        'the stored secret does not open: it was sealed under another EASEL_SECRET_KEY, or changed since',
        { cause: error },
      );
    }
  }

  /** Hex HMAC-SHA256 of the secret: equal secrets, equal fingerprints; reveals nothing else. */
  fingerprint(secret: string): string {
    return createHmac('sha256', this.#fingerprintKey).update(secret, 'utf8').digest('hex');
  }
}

/** `EASEL_SECRET_KEY` as 64 hex digits or base64 (standard or url-safe) of 32 bytes; undefined otherwise. */
export function parseSecretKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === SECRET_KEY_BYTES) return bytes;
  }
  return undefined;
}
