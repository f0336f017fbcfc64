import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { isProcessAlive } from './process-liveness.js';

/**
 * Runs the postgres server under a tiny shell that owns its lifetime. The shell's stdin is a
 * pipe from this process; the kernel closes it however this process ends (exit, Ctrl-C,
 * SIGKILL, crash), and on EOF the shell asks postgres for a fast shutdown. So the database
 * never outlives Easel, with no cleanup code that a SIGKILL could skip.
 *
 * The shell leads its own process group, and the postmaster stays in it (a non-interactive shell
 * has no job control, so `&` does not make a new group; the postmaster's own children call
 * setsid and leave it, which is how PostgreSQL signals them). Signals for the server therefore go
 * to the group: they reach the postmaster even when the shell is not there to pass them on.
 * The shell ignores SIGQUIT, so after an immediate-shutdown request it still waits for postgres
 * and its exit still means that postgres has exited.
 */
// A background job's stdin is /dev/null in sh, so the pipe is kept on fd 3 for the watcher.
const GUARD_SCRIPT = `
exec 3<&0
"$0" "$@" </dev/null 3<&- &
pg=$!
echo "easel-guard: postgres pid $pg" >&2
trap 'kill -INT $pg 2>/dev/null' INT TERM
trap '' QUIT
( while read -r _ <&3; do :; done; kill -INT $pg 2>/dev/null ) &
watcher=$!
status=0
while kill -0 $pg 2>/dev/null; do wait $pg; status=$?; done
kill $watcher 2>/dev/null
exit $status
`;
const PID_LINE = /^easel-guard: postgres pid (\d+)$/;

/** How long each step of stop() waits before escalating. */
const FAST_SHUTDOWN_MS = 5000;
const IMMEDIATE_SHUTDOWN_MS = 2000;
const KILLED_EXIT_MS = 5000;

export interface GuardedPostgres {
  process: ChildProcess;
  /** Resolves once the server logs that it accepts connections; rejects if it exits first. */
  ready: Promise<void>;
  exited: Promise<void>;
  /** The postmaster's PID, once the guard has started it. */
  postmasterPid(): number | undefined;
}

export function spawnGuardedPostgres(options: {
  postgresBinary: string;
  args: string[];
  uid?: number | undefined;
  gid?: number | undefined;
  onLog: (line: string) => void;
}): GuardedPostgres {
  const child = spawn('/bin/sh', ['-c', GUARD_SCRIPT, options.postgresBinary, ...options.args], {
    stdio: ['pipe', 'ignore', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal goes to Easel alone, which drains its
    // tasks while the database is still up, then stops the database itself.
    detached: true,
    uid: options.uid,
    gid: options.gid,
    // English messages, so "ready to accept connections" can be recognised.
    env: { ...process.env, LC_MESSAGES: 'C', LANG: 'C' },
  });
  // The stdin pipe stops the server if Easel dies; on a normal exit ask for a fast shutdown too.
  const onExit = () => signalGroup(child, 'SIGINT');
  process.on('exit', onExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', onExit);
      resolve();
    }),
  );
  let postmasterPid: number | undefined;
  let stderr = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      if (stderr.length < 20_000) stderr += chunk;
      for (const line of chunk.split('\n')) {
        const pid = PID_LINE.exec(line.trim());
        if (pid) postmasterPid = Number(pid[1]);
        else if (line.trim()) options.onLog(line);
      }
      if (chunk.includes('database system is ready to accept connections')) resolve();
    });
    void exited.then(() => reject(new Error(`postgres exited before it was ready:\n${stderr.trim()}`)));
  });
  // Never let a broken pipe on the guard's stdin crash Easel.
  child.stdin!.on('error', () => undefined);
  return { process: child, ready, exited, postmasterPid: () => postmasterPid };
}

export function hasExited(server: GuardedPostgres): boolean {
  return server.process.exitCode !== null || server.process.signalCode !== null;
}

/**
 * Fast shutdown (SIGINT: abort sessions, checkpoint); if that hangs, immediate shutdown
 * (SIGQUIT: no checkpoint, crash recovery at the next start); if that hangs too, SIGKILL.
 * Resolves once the postmaster has exited. A SIGKILLed postmaster's children notice its death
 * and exit on their own.
 */
export async function stopGuardedPostgres(server: GuardedPostgres, log: Logger): Promise<void> {
  if (hasExited(server)) return;
  const exitsWithin = (ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    return Promise.race([server.exited.then(() => true), timeout]).finally(() => clearTimeout(timer));
  };
  signalGroup(server.process, 'SIGINT');
  if (await exitsWithin(FAST_SHUTDOWN_MS)) return;
  log.warn('embedded PostgreSQL did not finish a fast shutdown; asking for an immediate shutdown');
  signalGroup(server.process, 'SIGQUIT');
  if (await exitsWithin(IMMEDIATE_SHUTDOWN_MS)) return;
  log.warn('embedded PostgreSQL did not stop; killing it');
  signalGroup(server.process, 'SIGKILL');
  await server.exited;
  // The guard and the postmaster die together; the postmaster may take a moment longer to go.
  const pid = server.postmasterPid();
  const deadline = Date.now() + KILLED_EXIT_MS;
  while (pid !== undefined && isProcessAlive(pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: every process of the group has exited already.
  }
}
