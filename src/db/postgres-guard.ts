import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Runs the postgres server under a tiny shell that owns its lifetime. The shell's stdin is a
 * pipe from this process; the kernel closes it however this process ends (exit, Ctrl-C,
 * SIGKILL, crash), and on EOF the shell asks postgres for a fast shutdown. So the database
 * never outlives Easel, with no cleanup code that a SIGKILL could skip.
 */
// A background job's stdin is /dev/null in sh, so the pipe is kept on fd 3 for the watcher.
const GUARD_SCRIPT = `
exec 3<&0
"$0" "$@" </dev/null 3<&- &
pg=$!
trap 'kill -INT $pg 2>/dev/null' INT TERM
( while read -r _ <&3; do :; done; kill -INT $pg 2>/dev/null ) &
watcher=$!
status=0
while kill -0 $pg 2>/dev/null; do wait $pg; status=$?; done
kill $watcher 2>/dev/null
exit $status
`;

export interface GuardedPostgres {
  process: ChildProcess;
  /** Resolves once the server logs that it accepts connections; rejects if it exits first. */
  ready: Promise<void>;
  exited: Promise<void>;
}

export function spawnGuardedPostgres(options: {
  postgresBinary: string;
  args: string[];
  uid?: number;
  gid?: number;
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
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      if (stderr.length < 20_000) stderr += chunk;
      for (const line of chunk.split('\n')) if (line.trim()) options.onLog(line);
      if (chunk.includes('database system is ready to accept connections')) resolve();
    });
    void exited.then(() => reject(new Error(`postgres exited before it was ready:\n${stderr.trim()}`)));
  });
  // Never let a broken pipe on the guard's stdin crash Easel.
  child.stdin!.on('error', () => undefined);
  return { process: child, ready, exited };
}
