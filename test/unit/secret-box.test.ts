import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/config/env.js';
import { credentialsFromEnv } from '../../src/credentials/env-credentials.js';
import { parseSecretKey, SecretBox, SecretBoxError } from '../../src/credentials/secret-box.js';
import { openSecretBox } from '../../src/credentials/secret-key-file.js';

const SECRET = 'r8_exampleSecretToken1234';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('opens what it sealed; the sealed bytes do not contain the secret and differ every time', () => {
    const first = box.seal(SECRET);
    const second = box.seal(SECRET);
    expect(box.open(first)).toBe(SECRET);
    expect(first.equals(second)).toBe(false);
    expect(first.includes(Buffer.from(SECRET))).toBe(false);
    expect(first[0]).toBe(1); // format version
  });

  it('refuses a tampered ciphertext, another key and an unknown format version', () => {
    const sealed = box.seal(SECRET);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 0x01;
    expect(() => box.open(tampered)).toThrow(SecretBoxError);
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow(/another EASEL_SECRET_KEY/);
    const future = Buffer.from(sealed);
    future[0] = 2;
    expect(() => box.open(future)).toThrow(/format/);
  });

  it('fingerprints equal secrets equally, under a key of its own', () => {
    expect(box.fingerprint(SECRET)).toBe(box.fingerprint(SECRET));
    expect(box.fingerprint(SECRET)).not.toBe(box.fingerprint(`${SECRET}x`));
    expect(box.fingerprint(SECRET)).not.toBe(new SecretBox(randomBytes(32)).fingerprint(SECRET));
    expect(box.fingerprint(SECRET)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('EASEL_SECRET_KEY', () => {
  const key = randomBytes(32);

  it('accepts 32 bytes as hex or base64 (standard and url-safe)', () => {
    expect(parseSecretKey(key.toString('hex'))?.equals(key)).toBe(true);
    expect(parseSecretKey(key.toString('base64'))?.equals(key)).toBe(true);
    expect(parseSecretKey(key.toString('base64url'))?.equals(key)).toBe(true);
    expect(loadConfig({ EASEL_SECRET_KEY: key.toString('hex') }).secretKey?.equals(key)).toBe(true);
    expect(loadConfig({}).secretKey).toBeUndefined();
  });

  it('anything else is a ConfigError that does not echo the value', () => {
    for (const bad of ['short', randomBytes(16).toString('hex'), randomBytes(31).toString('base64'), 'z'.repeat(64)]) {
      let error: unknown;
      try {
        loadConfig({ EASEL_SECRET_KEY: bad });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/EASEL_SECRET_KEY must be 32 bytes/);
      expect((error as Error).message).not.toContain(bad);
    }
  });
});

describe('the key file of the embedded mode', () => {
  const capture = () => {
    const lines: string[] = [];
    const log = pino(
      { level: 'trace' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    return { lines, log };
  };

  it('is generated once with mode 0600, logged once with its path, and reused afterwards', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-key-'));
    try {
      const { lines, log } = capture();
      const config = { secretKey: undefined, databaseUrl: undefined, dataDir };
      const first = await openSecretBox(config, log);
      const file = path.join(dataDir, 'secret.key');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const second = await openSecretBox(config, log);
      expect(second!.open(first!.seal(SECRET))).toBe(SECRET);
      const generated = lines.filter((line) => line.includes('generated a key'));
      expect(generated).toHaveLength(1);
      expect(generated[0]).toContain(file);
      expect(lines.join('')).not.toContain((await readFile(file, 'utf8')).trim());
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('is not used with an external database: no key, no box', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-key-'));
    try {
      const box = await openSecretBox(
        { secretKey: undefined, databaseUrl: 'postgres://db/easel', dataDir },
        capture().log,
      );
      expect(box).toBeUndefined();
      await expect(stat(path.join(dataDir, 'secret.key'))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a damaged key file is a ConfigError, never silently replaced', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-key-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path.join(dataDir, 'secret.key'), 'not a key\n', { mode: 0o600 });
      await expect(
        openSecretBox({ secretKey: undefined, databaseUrl: undefined, dataDir }, capture().log),
      ).rejects.toThrow(ConfigError);
      expect(await readFile(path.join(dataDir, 'secret.key'), 'utf8')).toBe('not a key\n');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('credentialsFromEnv', () => {
  it('reads every form users have, labelled by the variable', () => {
    expect(
      credentialsFromEnv({
        REPLICATE_API_TOKEN: 'r8_aaaa',
        HUGGING_FACE_TOKENS: 'hf_a, hf_b,,',
        HUGGING_FACE_TOKEN_10: 'hf_ten',
        HUGGING_FACE_TOKEN_2: 'hf_two',
        HUGGING_FACE_TOKEN: 'hf_plain',
        OPENAI_API_KEY: 'sk-one',
        HUGGING_FACE_TOKEN_X: 'ignored',
      }),
    ).toEqual([
      { provider: 'replicate', label: 'env REPLICATE_API_TOKEN', secret: 'r8_aaaa' },
      { provider: 'huggingface', label: 'env HUGGING_FACE_TOKENS[1]', secret: 'hf_a' },
      { provider: 'huggingface', label: 'env HUGGING_FACE_TOKENS[2]', secret: 'hf_b' },
      { provider: 'huggingface', label: 'env HUGGING_FACE_TOKEN_2', secret: 'hf_two' },
      { provider: 'huggingface', label: 'env HUGGING_FACE_TOKEN_10', secret: 'hf_ten' },
      { provider: 'huggingface', label: 'env HUGGING_FACE_TOKEN', secret: 'hf_plain' },
      { provider: 'openai', label: 'env OPENAI_API_KEY', secret: 'sk-one' },
    ]);
    expect(credentialsFromEnv({ REPLICATE_API_TOKEN: '  ' })).toEqual([]);
  });
});
