import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { credentialsFromEnv } from '../../src/credentials/env-credentials.js';
import { AttemptAborted } from '../../src/providers/abort.js';
import {
  CredentialError,
  PermanentError,
  QuotaExceededError,
  RateLimitedError,
  RetryableError,
} from '../../src/providers/errors.js';
import { deriveAccessKey } from '../../src/providers/novelai/access-key.js';
import { readNovelAIConfig } from '../../src/providers/novelai/config.js';
import { createNovelAIProvider } from '../../src/providers/novelai/index.js';
import { jwtExpiry } from '../../src/providers/novelai/jwt.js';
import { positionCenter } from '../../src/providers/novelai/request.js';
import { accountSecret, parseNovelAISecret } from '../../src/providers/novelai/secret.js';
import type { CachedToken, TokenCache } from '../../src/providers/token-cache.js';
import type { Credential, Provider, TaskInput } from '../../src/providers/types.js';
import { FakeNovelAI, independentAccessKey, makeJwt } from '../fakes/novelai.js';
import { createRunContext, taskInput, rejectionOf } from '../helpers/run-context.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const ALICE = { email: 'alice@example.com', password: 'alice-password-1' };
const BOB = { email: 'bob@example.com', password: 'bob-password-2' };
const PST = 'pst-persistent-token-of-carol';
const alice: Credential = { id: 'cred-alice', label: 'alice', secret: accountSecret(ALICE.email, ALICE.password) };
const bob: Credential = { id: 'cred-bob', label: 'bob', secret: accountSecret(BOB.email, BOB.password) };
const carol: Credential = { id: 'cred-carol', label: 'carol', secret: PST };

/** The TokenCache contract in memory, with the remaining time computed at read as the store does. */
class MemoryTokens implements TokenCache {
  readonly entries = new Map<string, { token: string; expiresAt: Date | null } | { damaged: string }>();
  writes = 0;
  async read(id: string): Promise<CachedToken | { damaged: string } | undefined> {
    const entry = this.entries.get(id);
    if (!entry || 'damaged' in entry) return entry;
    return { ...entry, remainingMs: entry.expiresAt ? entry.expiresAt.getTime() - Date.now() : null };
  }
  async write(id: string, token: string, expiresAt: Date | null): Promise<void> {
    this.writes += 1;
    this.entries.set(id, { token, expiresAt });
  }
  token(id: string): string | undefined {
    const entry = this.entries.get(id);
    return entry && 'token' in entry ? entry.token : undefined;
  }
}

let fake: FakeNovelAI;
let tokens: MemoryTokens;
let provider: Provider;

beforeAll(async () => {
  fake = await new FakeNovelAI().start();
  await fake.addAccount(ALICE.email, ALICE.password);
  await fake.addAccount(BOB.email, BOB.password);
  fake.addPersistentToken(PST, 'carol@example.com');
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.reset();
});

function freshProvider(env: Record<string, string> = {}): Provider {
  tokens = new MemoryTokens();
  provider = createNovelAIProvider(
    readNovelAIConfig({ NOVELAI_BASE_URL: fake.url, NOVELAI_API_BASE_URL: fake.url, ...env }),
    { tokens },
  );
  return provider;
}

const naiTask = (overrides: Partial<TaskInput> = {}) =>
  taskInput({ model: 'nai-diffusion-4-5-full', width: 832, height: 1216, steps: 23, guidance: 5, ...overrides });

async function run(input: TaskInput, credential: Credential, signal?: AbortSignal) {
  const warnings: string[] = [];
  const { ctx, record } = createRunContext({ credential, ...(signal ? { signal } : {}) });
  ctx.log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) });
  const images = await provider.run(input, ctx);
  return { images, record, warnings };
}

const failure = (input: TaskInput, credential: Credential, signal?: AbortSignal): Promise<Error> =>
  rejectionOf(run(input, credential, signal));

describe('novelai: access key', () => {
  it('matches an independent Argon2id + BLAKE2b (hash-wasm) and the recorded vector', async () => {
    // Recorded once with hash-wasm (argon2id t=2 m=1953 p=1 len=64, blake2b-128 salt) and
    // cross-checked with the reference argon2 CLI and Python hashlib (shared/providers §4).
    const recorded = 'AGpAvK0IEBF3UpqM3TJAfkGPdqF2JsCXUe9JM4mlH_ZuB80mR5xi3ujyhH2hbDIz';
    expect(await deriveAccessKey('user@example.com', 'correct horse battery staple')).toBe(recorded);
    expect(await independentAccessKey('user@example.com', 'correct horse battery staple')).toBe(recorded);
    // Short and non-ASCII passwords, url-safe characters: the two implementations agree.
    for (const [email, password] of [
      ['a@b.c', 'pw'],
      ['Mixed.Case@Example.COM', 'pässwörd with spaces/+'],
    ] as const) {
      const ours = await deriveAccessKey(email, password);
      expect(ours).toBe(await independentAccessKey(email, password));
      expect(ours).toMatch(/^[A-Za-z0-9_-]{64}$/);
    }
  });

  it('lowercases the email, as the web client does', async () => {
    expect(await deriveAccessKey('USER@Example.com', 'pw123456')).toBe(
      await deriveAccessKey('user@example.com', 'pw123456'),
    );
  });
});

describe('novelai: pieces', () => {
  it('reads the secret forms and refuses a broken account', () => {
    expect(parseNovelAISecret(PST)).toEqual({ kind: 'token', token: PST });
    expect(parseNovelAISecret(accountSecret(' a@b.c ', 'p w'))).toEqual({
      kind: 'account',
      email: 'a@b.c',
      password: 'p w',
    });
    // The display hint (last 4 characters) shows the address, never the password.
    expect(accountSecret('alice@example.com', 'secret').slice(-4)).toBe('om"}');
    expect(() => parseNovelAISecret('{"email":"a@b.c"}')).toThrow(/password/);
    expect(() => parseNovelAISecret('{not json')).toThrow(/JSON/);
  });

  it('imports NOVELAI_TOKEN and NOVELAI_EMAIL + NOVELAI_PASSWORD from the environment', () => {
    expect(
      credentialsFromEnv({ NOVELAI_TOKEN: ' pst-abc ', NOVELAI_EMAIL: 'a@b.c ', NOVELAI_PASSWORD: ' pass word ' }),
    ).toEqual([
      { provider: 'novelai', label: 'env NOVELAI_TOKEN', secret: 'pst-abc' },
      { provider: 'novelai', label: 'env NOVELAI_EMAIL a@b.c', secret: '{"password":" pass word ","email":"a@b.c"}' },
    ]);
    // An email without a password (or the reverse) is no account.
    expect(credentialsFromEnv({ NOVELAI_EMAIL: 'a@b.c' })).toEqual([]);
    expect(credentialsFromEnv({ NOVELAI_PASSWORD: 'x' })).toEqual([]);
  });

  it('reads the expiry of a JWT and nothing from anything else', () => {
    expect(jwtExpiry(makeJwt({ exp: 2_000_000_000 }))).toEqual(new Date(2_000_000_000_000));
    expect(jwtExpiry(PST)).toBeUndefined();
    expect(jwtExpiry('a.b.c')).toBeUndefined();
    expect(jwtExpiry(makeJwt({ sub: 'x' }))).toBeUndefined();
  });

  it('places characters on the 5×5 grid', () => {
    expect(positionCenter(undefined)).toEqual({ x: 0.5, y: 0.5 });
    expect(positionCenter('A1')).toEqual({ x: 0.1, y: 0.1 });
    expect(positionCenter('E5')).toEqual({ x: 0.9, y: 0.9 });
    expect(positionCenter('B4')).toEqual({ x: 0.3, y: 0.7 });
  });
});

describe('novelai: generation', () => {
  beforeAll(() => freshProvider());

  it('sends V4.5 the structured prompt with characters and unpacks the ZIP into images', async () => {
    const { images, record } = await run(
      naiTask({
        n: 2,
        seed: 1000,
        negativePrompt: 'lowres',
        options: {
          sampler: 'k_dpmpp_2m',
          uc_preset: 1,
          characters: [
            { prompt: 'girl, red hair', negative_prompt: 'hat', position: 'B3' },
            { prompt: 'boy, blue hair', position: 'D3' },
          ],
        },
      }),
      carol,
    );
    expect(images).toHaveLength(2);
    expect(images.map((image) => [image.width, image.height, image.seed, image.contentType])).toEqual([
      [832, 1216, 1000, 'image/png'],
      [832, 1216, 1001, 'image/png'],
    ]);
    expect(record.progress.map((step) => step.stage)).toEqual(['signing_in', 'generating', 'decoding']);
    const { body, bearer } = fake.generations[0]!;
    expect(bearer).toBe(PST);
    const input = 'a lighthouse at dusk, very aesthetic, masterpiece, no text';
    expect(body).toMatchObject({ input, model: 'nai-diffusion-4-5-full', action: 'generate' });
    expect(body.parameters).toMatchObject({
      params_version: 3,
      width: 832,
      height: 1216,
      scale: 5,
      steps: 23,
      n_samples: 2,
      seed: 1000,
      sampler: 'k_dpmpp_2m',
      ucPreset: 1,
      qualityToggle: true,
      noise_schedule: 'karras',
      negative_prompt: 'lowres',
      use_coords: true,
      characterPrompts: [
        { prompt: 'girl, red hair', uc: 'hat', center: { x: 0.3, y: 0.5 }, enabled: true },
        { prompt: 'boy, blue hair', uc: '', center: { x: 0.7, y: 0.5 }, enabled: true },
      ],
      v4_prompt: {
        caption: {
          base_caption: input,
          char_captions: [
            { char_caption: 'girl, red hair', centers: [{ x: 0.3, y: 0.5 }] },
            { char_caption: 'boy, blue hair', centers: [{ x: 0.7, y: 0.5 }] },
          ],
        },
        use_coords: true,
        use_order: true,
      },
      v4_negative_prompt: {
        caption: {
          base_caption: 'lowres',
          char_captions: [
            { char_caption: 'hat', centers: [{ x: 0.3, y: 0.5 }] },
            { char_caption: '', centers: [{ x: 0.7, y: 0.5 }] },
          ],
        },
        legacy_uc: false,
      },
    });
  });

  it('sends V3 a flat prompt with its own quality tags, and none when the toggle is off', async () => {
    await run(naiTask({ model: 'nai-diffusion-3', width: 1024, height: 1024 }), carol);
    await run(
      naiTask({ model: 'nai-diffusion-3', width: 1024, height: 1024, options: { quality_toggle: false } }),
      carol,
    );
    const [withTags, without] = fake.generations.map((generation) => generation.body);
    expect(withTags!.input).toBe('a lighthouse at dusk, best quality, amazing quality, very aesthetic, absurdres');
    expect(withTags!.parameters).not.toHaveProperty('v4_prompt');
    expect(withTags!.parameters).toMatchObject({ noise_schedule: 'native', qualityToggle: true });
    expect(without).toMatchObject({ input: 'a lighthouse at dusk', parameters: { qualityToggle: false } });
  });

  it('sends img2img with the input image at the requested size', async () => {
    const sharp = (await import('sharp')).default;
    const data = await sharp({ create: { width: 500, height: 300, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    await run(
      naiTask({
        kind: 'img2img',
        width: 512,
        height: 512,
        strength: 0.4,
        inputImage: { data, contentType: 'image/png', width: 500, height: 300 },
        options: { noise: 0.1 },
      }),
      carol,
    );
    const { body } = fake.generations[0]!;
    const parameters = body.parameters as Record<string, unknown>;
    expect(body.action).toBe('img2img');
    expect(parameters).toMatchObject({ strength: 0.4, noise: 0.1, extra_noise_seed: 42 });
    const sent = await sharp(Buffer.from(parameters.image as string, 'base64')).metadata();
    expect([sent.width, sent.height]).toEqual([512, 512]);
  });

  it('refuses sizes that are not multiples of 64 and an unknown model, permanently', async () => {
    expect(await failure(naiTask({ width: 800 }), carol)).toBeInstanceOf(PermanentError);
    expect(await failure(naiTask({ model: 'nai-diffusion-2' }), carol)).toBeInstanceOf(PermanentError);
    expect(fake.generations).toHaveLength(0);
  });
});

describe('novelai: sign-in and token cache', () => {
  it('signs an account in once and reuses the cached token', async () => {
    freshProvider();
    await run(naiTask(), alice);
    await run(naiTask(), alice);
    expect(fake.logins.get(ALICE.email)).toBe(1);
    expect(tokens.writes).toBe(1);
    const cached = tokens.token(alice.id)!;
    expect(fake.generations.map((generation) => generation.bearer)).toEqual([cached, cached]);
    expect(jwtExpiry(cached)!.getTime() - Date.now()).toBeGreaterThan(29 * DAY_MS);
  });

  it('renews a cached token with under 10 days left, and keeps one with more', async () => {
    freshProvider();
    const soon = makeJwt({ exp: Math.floor((Date.now() + 9 * DAY_MS) / 1000) });
    fake.addPersistentToken(soon, ALICE.email); // it still works upstream: renewal is ours, before use
    await tokens.write(alice.id, soon, jwtExpiry(soon)!);
    await run(naiTask(), alice);
    expect(fake.logins.get(ALICE.email)).toBe(1);
    expect(tokens.token(alice.id)).not.toBe(soon);
    expect(fake.generations[0]!.bearer).toBe(tokens.token(alice.id));

    const later = makeJwt({ exp: Math.floor((Date.now() + 11 * DAY_MS) / 1000) });
    fake.addPersistentToken(later, ALICE.email);
    await tokens.write(alice.id, later, jwtExpiry(later)!);
    await run(naiTask(), alice);
    expect(fake.logins.get(ALICE.email)).toBe(1);
    expect(fake.generations[1]!.bearer).toBe(later);
  });

  it('survives a damaged cache entry or a cached non-JWT: signs in again with a warning', async () => {
    freshProvider();
    tokens.entries.set(alice.id, { damaged: 'the stored secret does not open' });
    const first = await run(naiTask(), alice);
    expect(first.images).toHaveLength(1);
    expect(first.warnings.join('\n')).toMatch(/damaged/);
    tokens.entries.set(alice.id, { token: 'garbage-not-a-jwt', expiresAt: new Date(Date.now() + 20 * DAY_MS) });
    const second = await run(naiTask(), alice);
    expect(second.warnings.join('\n')).toMatch(/not a readable JWT/);
    expect(fake.logins.get(ALICE.email)).toBe(2);
  });

  it('survives a cache that throws', async () => {
    freshProvider();
    const broken: TokenCache = {
      read: async () => {
        throw new Error('database down');
      },
      write: async () => {
        throw new Error('database down');
      },
    };
    provider = createNovelAIProvider(
      readNovelAIConfig({ NOVELAI_BASE_URL: fake.url, NOVELAI_API_BASE_URL: fake.url }),
      {
        tokens: broken,
      },
    );
    const { images, warnings } = await run(naiTask(), alice);
    expect(images).toHaveLength(1);
    expect(warnings).toHaveLength(2);
  });

  it('never mixes two accounts up', async () => {
    freshProvider();
    // Both accounts at once, then again from the cache: each task goes out under its own account.
    for (let round = 0; round < 2; round += 1) {
      await Promise.all([
        run(naiTask({ prompt: `for ${ALICE.email}` }), alice),
        run(naiTask({ prompt: `for ${BOB.email}` }), bob),
      ]);
    }
    expect(fake.generations).toHaveLength(4);
    for (const generation of fake.generations) {
      expect(generation.body.input).toMatch(new RegExp(`^for ${generation.account}, `));
    }
    expect([fake.logins.get(ALICE.email), fake.logins.get(BOB.email)]).toEqual([1, 1]);
    const claimsOf = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { id: string };
    expect(claimsOf(tokens.token(alice.id)!).id).toBe(ALICE.email);
    expect(claimsOf(tokens.token(bob.id)!).id).toBe(BOB.email);
  });

  it('signs in again once when a cached token was revoked', async () => {
    freshProvider();
    await run(naiTask(), alice);
    fake.revokeAccessTokens();
    await run(naiTask(), alice);
    expect(fake.logins.get(ALICE.email)).toBe(2);
  });

  it('signs in an account whose key was made from the email as typed, capitals and all', async () => {
    freshProvider();
    await fake.addAccount('Dora.Case@Example.com', 'dora-password', true);
    const dora = { id: 'cred-dora', label: 'dora', secret: accountSecret('Dora.Case@Example.com', 'dora-password') };
    expect((await run(naiTask(), dora)).images).toHaveLength(1);
    expect(fake.logins.get('dora.case@example.com')).toBe(1);
  });

  it('turns a wrong password into a credential error', async () => {
    freshProvider();
    const wrong = { ...alice, id: 'cred-wrong', secret: accountSecret(ALICE.email, 'not-her-password') };
    const error = await failure(naiTask(), wrong);
    expect(error).toBeInstanceOf(CredentialError);
    expect(error.message).toMatch(/Incorrect access key/);
    expect(tokens.entries.size).toBe(0);
  });
});

describe('novelai: failures', () => {
  beforeAll(() => freshProvider({ NOVELAI_CONCURRENT_WAIT_MS: '1500' }));

  it('401 on a token credential is a credential error', async () => {
    expect(await failure(naiTask(), { ...carol, secret: 'pst-unknown' })).toBeInstanceOf(CredentialError);
  });

  it('402 and an Anlas refusal are quota', async () => {
    fake.failNext({ status: 402, message: 'An active subscription is required' });
    expect(await failure(naiTask(), carol)).toBeInstanceOf(QuotaExceededError);
    fake.failNext({ status: 400, message: 'Insufficient Anlas' });
    expect(await failure(naiTask(), carol)).toBeInstanceOf(QuotaExceededError);
  });

  it('the concurrent-generation 429 is a rate-limit wait, not a failure', async () => {
    fake.lock('carol@example.com');
    const error = await failure(naiTask(), carol);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).not.toBeInstanceOf(QuotaExceededError);
    expect((error as RateLimitedError).retryAfterMs).toBe(1500);
    expect(error.message).toMatch(/Concurrent generation is locked/);
  });

  it("Cloudflare's HTML 429 is a rate limit without a wait of its own", async () => {
    fake.failNext({ status: 429, rawBody: '<html><title>Access denied</title></html>' });
    const error = await failure(naiTask(), carol);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBeUndefined();
  });

  it('5xx at generation or login is retryable', async () => {
    fake.failNext({ status: 503, message: 'down' });
    expect(await failure(naiTask(), carol)).toBeInstanceOf(RetryableError);
    fake.failNext({ status: 500, path: '/user/login' });
    expect(await failure(naiTask(), alice)).toBeInstanceOf(RetryableError);
  });

  it('a malformed ZIP, a ZIP without images and a broken PNG are retryable bad output', async () => {
    for (const kind of ['not-zip', 'zip-without-images', 'not-png'] as const) {
      fake.malformNext(kind);
      const error = await failure(naiTask(), carol);
      expect(error, kind).toBeInstanceOf(RetryableError);
      expect((error as RetryableError).code, kind).toBe('PROVIDER_BAD_OUTPUT');
    }
  });

  it('cancel of a slow generation stops at once and closes the connection', async () => {
    fake.delay(5000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new AttemptAborted('cancel')), 100);
    const started = Date.now();
    const error = await failure(naiTask(), carol, controller.signal);
    expect(error).toBeInstanceOf(AttemptAborted);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect.poll(() => fake.aborted, { timeout: 6000 }).toBe(1);
  });

  it('a down host is retryable', async () => {
    const down = createNovelAIProvider(
      readNovelAIConfig({ NOVELAI_BASE_URL: 'http://127.0.0.1:1', NOVELAI_API_BASE_URL: 'http://127.0.0.1:1' }),
    );
    const { ctx } = createRunContext({ credential: carol });
    await expect(down.run(naiTask(), ctx)).rejects.toBeInstanceOf(RetryableError);
  });
});
