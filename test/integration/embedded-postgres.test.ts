import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { queryOnce } from '../helpers/database.js';
import { testLogger } from '../helpers/easel.js';
import { isAlive } from '../helpers/processes.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'easel-embedded-'));
  await chmod(root, 0o755);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('embedded PostgreSQL', () => {
  it('starts, keeps data across restarts, is adopted by a second process, and stops', async () => {
    const dataDir = path.join(root, 'a', 'postgres');
    const first = await startEmbeddedPostgres({ dataDir, log: testLogger() });
    expect(first.owned).toBe(true);
    await queryOnce(first.connectionString, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');
    const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);

    const adopter = await startEmbeddedPostgres({ dataDir, log: testLogger() });
    expect(adopter).toMatchObject({ owned: false, port: first.port });
    await adopter.stop();
    expect(await queryOnce(first.connectionString, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);

    await first.stop();
    await first.stop(); // idempotent
    expect(isAlive(pid)).toBe(false);

    const again = await startEmbeddedPostgres({ dataDir, log: testLogger() });
    expect(await queryOnce(again.connectionString, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
    await again.stop();
  });

  it('starts over a stale postmaster.pid whose process is gone', async () => {
    const dataDir = path.join(root, 'b', 'postgres');
    const server = await startEmbeddedPostgres({ dataDir, log: testLogger() });
    await server.stop();
    await writeFile(path.join(dataDir, 'postmaster.pid'), `999999\n${dataDir}\n0\n${server.port}\n`);
    const restarted = await startEmbeddedPostgres({ dataDir, log: testLogger() });
    expect(restarted.owned).toBe(true);
    expect(await queryOnce(restarted.connectionString, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await restarted.stop();
  });

  // Only root hands the server to another user, so only root can be locked out this way.
  it.runIf(process.getuid?.() === 0)('explains a data directory the postgres user cannot reach', async () => {
    const locked = path.join(root, 'locked');
    await mkdir(locked, { mode: 0o700 });
    await expect(startEmbeddedPostgres({ dataDir: path.join(locked, 'postgres'), log: testLogger() })).rejects.toThrow(
      /cannot enter .*locked.*EASEL_DATA_DIR/,
    );
  });
});
