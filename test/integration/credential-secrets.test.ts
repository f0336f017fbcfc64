import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log.js';
import { startEasel, type RunningEasel } from '../../src/runtime/easel.js';
import { createTestDatabase } from '../helpers/database.js';
import { api } from '../helpers/easel.js';

/** Every JSON log line of one Easel, at the most verbose level, through the production logger. */
function capturedLogger() {
  const lines: string[] = [];
  const log = createLogger(
    { level: 'trace', format: 'json' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  return { lines, log };
}

async function start(databaseUrl: string, env: Record<string, string>, log: ReturnType<typeof capturedLogger>['log']) {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    EASEL_DATA_DIR: await mkdtemp(path.join(os.tmpdir(), 'easel-secrets-')),
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  return startEasel(config, log, { roles: { api: true, worker: true } });
}

let running: RunningEasel | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

const ENV_SECRETS = {
  REPLICATE_API_TOKEN: 'r8_LeakCheckReplicate01',
  HUGGING_FACE_TOKENS: 'hf_LeakCheckListed01,hf_LeakCheckListed02',
  HUGGING_FACE_TOKEN_1: 'hf_LeakCheckNumbered1',
  OPENAI_API_KEY: 'sk-LeakCheckOpenAi0001',
};

describe('secrets never appear in logs or answers', () => {
  it('a run that imports, adds, lists, patches, disables, enables and deletes credentials shows no secret anywhere', async () => {
    const added = 'r8_LeakCheckAddedByApi9';
    const refused = 'r8_LeakCheck with spaces';
    const { lines, log } = capturedLogger();
    running = await start(
      await createTestDatabase(),
      { EASEL_SECRET_KEY: randomBytes(32).toString('base64'), ...ENV_SECRETS },
      log,
    );
    const base = running.url!;
    const answers: string[] = [];
    const call = async (method: string, route: string, body?: unknown) => {
      const response = await api<Record<string, unknown>>(base, method, route, body);
      answers.push(`${response.status} ${[...response.headers].join(' ')} ${JSON.stringify(response.body)}`);
      return response;
    };

    const created = await call('POST', '/v1/admin/credentials', {
      provider: 'replicate',
      secret: added,
      label: 'mine',
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await call('POST', '/v1/admin/credentials', { provider: 'replicate', secret: added })).status).toBe(409);
    expect(
      (await call('POST', '/v1/admin/credentials', { provider: 'replicate', secret: ENV_SECRETS.REPLICATE_API_TOKEN }))
        .status,
    ).toBe(409);
    expect((await call('POST', '/v1/admin/credentials', { provider: 'replicate', secret: refused })).status).toBe(400);
    expect((await call('POST', '/v1/admin/credentials', `{"provider":"replicate","secret":"${added}"`)).status).toBe(
      400,
    );
    expect((await call('GET', '/v1/admin/credentials')).status).toBe(200);
    expect((await call('GET', `/v1/admin/credentials/${id}`)).status).toBe(200);
    expect((await call('PATCH', `/v1/admin/credentials/${id}`, { concurrency: 2, daily_limit: 10 })).status).toBe(200);
    expect((await call('PATCH', `/v1/admin/credentials/${id}`, { secret: added })).status).toBe(400);
    expect((await call('POST', `/v1/admin/credentials/${id}/disable`, { reason: 'rotating' })).status).toBe(200);
    expect((await call('POST', `/v1/admin/credentials/${id}/enable`)).status).toBe(200);
    expect((await call('GET', '/v1/providers')).status).toBe(200);
    expect((await call('DELETE', `/v1/admin/credentials/${id}`)).status).toBe(204);
    expect((await call('GET', `/v1/admin/credentials/${id}`)).status).toBe(404);
    await running.stop();
    running = undefined;

    expect(lines.length).toBeGreaterThan(5);
    expect(lines.some((line) => line.includes('imported provider credentials'))).toBe(true);
    const everything = [...lines, ...answers].join('\n');
    const secrets = [added, refused, ...Object.values(ENV_SECRETS).flatMap((value) => value.split(','))];
    for (const secret of secrets) {
      expect(everything.includes(secret), `${secret} leaked`).toBe(false);
      // Not even most of it: the hint shows the last 4 characters, nothing longer.
      expect(everything.includes(secret.slice(0, -4)), `a prefix of ${secret} leaked`).toBe(false);
    }
  });
});

describe('an external database without EASEL_SECRET_KEY', () => {
  it('starts, warns once that the environment secrets were not imported, and refuses to store a secret with 503 SECRET_KEY_MISSING', async () => {
    const { lines, log } = capturedLogger();
    const databaseUrl = await createTestDatabase();
    running = await start(databaseUrl, ENV_SECRETS, log);
    const warnings = lines.filter((line) => line.includes('were not imported'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('EASEL_SECRET_KEY');
    expect(JSON.parse(warnings[0]!).level).toBe(40);

    const refused = await api<{ code: string; detail: string }>(running.url!, 'POST', '/v1/admin/credentials', {
      provider: 'replicate',
      secret: 'r8_NoKeyToSealThis1',
    });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('SECRET_KEY_MISSING');
    expect(refused.body.detail).toContain('EASEL_SECRET_KEY');
    const listed = await api<{ data: unknown[] }>(running.url!, 'GET', '/v1/admin/credentials');
    expect(listed.body.data).toEqual([]);
    expect([...lines, JSON.stringify(refused.body)].join('\n')).not.toContain('NoKeyToSealThis');
  });
});
