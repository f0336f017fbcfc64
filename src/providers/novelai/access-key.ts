import { argon2idAsync } from '@noble/hashes/argon2.js';
import { blake2b } from '@noble/hashes/blake2.js';

/**
 * NovelAI's access key: what its clients send to `POST /user/login` instead of the password.
 * The parameters are NovelAI's, shared by its own web client and every port of it (Aedial's
 * novelai-api `get_access_key`, LlmKira's `encode_access_key`, the libsodium ports):
 *
 *   salt = BLAKE2b-128(password[0..6] + email + "novelai_data_access_key")
 *   raw  = Argon2id v1.3(password, salt, t = 2, m = 1953 KiB (libsodium's 2 000 000 bytes), p = 1, 64 bytes)
 *   key  = url-safe base64 of raw, first 64 characters
 *
 * Whether the email is lowercased first is where clients differ (the libsodium port does,
 * Aedial's takes it as given); `lowercaseEmail` chooses, and session.ts tries both.
 */
const ACCESS_KEY_DOMAIN = 'novelai_data_access_key';
const ARGON2_TIME_COST = 2;
/** libsodium's memlimit of 2 000 000 bytes, which Argon2 takes in whole KiB. */
const ARGON2_MEMORY_KIB = Math.floor(2_000_000 / 1024);
const RAW_KEY_BYTES = 64;
const ACCESS_KEY_CHARS = 64;
const SALT_BYTES = 16;

export async function deriveAccessKey(email: string, password: string, lowercaseEmail = true): Promise<string> {
  const normalizedEmail = lowercaseEmail ? email.trim().toLowerCase() : email.trim();
  // The first six UTF-16 units, as the JavaScript web client's `slice(0, 6)` takes them.
  const preSalt = `${password.slice(0, 6)}${normalizedEmail}${ACCESS_KEY_DOMAIN}`;
  const salt = blake2b(new TextEncoder().encode(preSalt), { dkLen: SALT_BYTES });
  // The async form yields to the event loop while it works, so other tasks' I/O keeps moving.
  const raw = await argon2idAsync(new TextEncoder().encode(password), salt, {
    t: ARGON2_TIME_COST,
    m: ARGON2_MEMORY_KIB,
    p: 1,
    dkLen: RAW_KEY_BYTES,
    version: 0x13,
  });
  return Buffer.from(raw).toString('base64url').slice(0, ACCESS_KEY_CHARS);
}
