import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, spawnEasel, type EaselProcess } from '../helpers/processes.js';

/**
 * The keys at the top level of one JSON object, in order and with repeats: JSON.parse keeps
 * only the last of a repeated key, so a repeat has to be seen in the text.
 */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let at = 0; at < line.length; at++) {
    const char = line[at];
    if (char === '{' || char === '[') depth++;
    else if (char === '}' || char === ']') depth--;
    else if (char === '"') {
      const start = at;
      for (at++; line[at] !== '"'; at++) if (line[at] === '\\') at++;
      if (depth === 1 && line[at + 1] === ':') keys.push(JSON.parse(line.slice(start, at + 1)) as string);
    }
  }
  return keys;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

const running: EaselProcess[] = [];
let dataDir: string | undefined;
afterAll(async () => {
  for (const process of running) process.child.kill('SIGKILL');
  await Promise.all(running.map((process) => process.exited));
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function start(role: string, env: Record<string, string>): Promise<EaselProcess> {
  const process = spawnEasel([role], { ...env, PORT: String(await freePort()), DATABASE_URL: '' });
  running.push(process);
  await eventually(
    `easel ${role} to listen`,
    async () => process.output().includes('Easel API listening'),
    90_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${process.output()}`);
  });
  return process;
}

describe('JSON log lines', () => {
  it('have each key once, also when a second process adopts the embedded PostgreSQL', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'easel-logs-'));
    await chmod(dataDir, 0o755);
    const owner = await start('start', { EASEL_DATA_DIR: dataDir });
    const adopter = await start('api', { EASEL_DATA_DIR: dataDir });
    expect(adopter.output()).toContain('using the embedded PostgreSQL another Easel process runs');

    for (const process of [adopter, owner]) {
      process.child.kill('SIGTERM');
      expect(await process.exited, process.output()).toBe(0);
      const lines = process
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'));
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) {
        const keys = topLevelKeys(line);
        expect(
          keys.filter((key, index) => keys.indexOf(key) !== index),
          line,
        ).toEqual([]);
      }
    }
  }, 180_000);
});
