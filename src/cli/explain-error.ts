import { ConfigError } from '../config/env.js';
import { CliError } from './client.js';
import { StorageUnavailableError } from '../storage/storage.js';

/**
 * The one place where an error that stops the CLI becomes a line for the person at the
 * terminal: what went wrong and what to do about it. Errors are recognised by their codes
 * (Node's errno codes, PostgreSQL's SQLSTATE), never by their wording, and told apart by the
 * setting they concern: a refused connection at start-up is DATABASE_URL's, a refused listen
 * is HOST's or PORT's.
 */
export interface ErrorContext {
  /** What a server command was started with, when its configuration loaded. */
  server?: { host: string; port: number; databaseUrl: string | undefined };
}

/** A path the user chose (`--out`) that cannot be used; `option` names where it came from. */
export class UserPathError extends Error {
  override name = 'UserPathError';
  constructor(
    readonly option: string,
    readonly path: string,
    cause: unknown,
  ) {
    super(`${option} ${path}: ${errnoOf(cause)?.code ?? 'unusable'}`, { cause });
  }
}

interface Errno {
  code?: string;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
  path?: string;
  message: string;
}

/** One line (without the `easel: ` prefix) for any throwable. */
export function explainError(error: unknown, context: ErrorContext = {}): string {
  if (error instanceof CliError || error instanceof ConfigError) return error.message;
  if (error instanceof UserPathError) return explainUserPath(error);
  // Before the errno rules: a refused connection here is the bucket's, not DATABASE_URL's.
  if (error instanceof StorageUnavailableError) return `image storage: ${error.message}`;
  const errno = errnoOf(error);
  const explained = errno && (explainListen(errno, context) ?? explainDatabase(errno, context) ?? explainFile(errno));
  if (explained) return explained;
  const message = error instanceof Error ? error.message : String(error);
  return `${message || 'unexpected error'} (run with --debug for the stack trace)`;
}

/**
 * The error that carries a code: the error itself, or for a connection to a name with several
 * addresses (Node's AggregateError), its first attempt, or a wrapped cause.
 */
function errnoOf(error: unknown): Errno | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    if (typeof (current as Errno).code === 'string') {
      const inner = current instanceof AggregateError ? (current.errors[0] as Errno | undefined) : undefined;
      return { ...inner, ...(current as Errno), message: current.message };
    }
    current = current instanceof AggregateError ? current.errors[0] : current.cause;
  }
  return undefined;
}

function explainListen(errno: Errno, { server }: ErrorContext): string | undefined {
  if (!server) return undefined;
  const isListen = errno.syscall === 'listen' || (errno.code === 'ENOTFOUND' && errno.hostname === server.host);
  if (!isListen) return undefined;
  const port = errno.port ?? server.port;
  switch (errno.code) {
    case 'EADDRINUSE':
      return `port ${port} is in use; set PORT to another port or stop the other process`;
    case 'EADDRNOTAVAIL':
      return `HOST=${server.host} is not an address of this machine; set HOST to 127.0.0.1, 0.0.0.0 or one of its addresses`;
    case 'EACCES':
      return `not allowed to listen on port ${port} (ports below 1024 need privileges); set PORT to 1024 or above`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `HOST=${server.host} does not resolve to an address; set HOST to an IP address such as 127.0.0.1`;
    default:
      return undefined;
  }
}

function explainDatabase(errno: Errno, { server }: ErrorContext): string | undefined {
  if (!server) return undefined;
  const where = server.databaseUrl ? `DATABASE_URL (${describeDatabaseUrl(server.databaseUrl)})` : undefined;
  const fix = where
    ? 'start PostgreSQL there or fix DATABASE_URL (unset it to use embedded PostgreSQL)'
    : 'see the log above; EASEL_DATA_DIR holds its data';
  const target = where ?? 'the embedded PostgreSQL';
  switch (errno.code) {
    case 'ECONNREFUSED':
      return `cannot connect to PostgreSQL at ${target}: connection refused; ${fix}`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach PostgreSQL at ${target} (${errno.code}); ${fix}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host of ${target}; check its spelling, or unset DATABASE_URL to use embedded PostgreSQL`;
    case '28P01': // invalid_password
    case '28000': // invalid_authorization_specification
      return `PostgreSQL at ${target} refused the login (${errno.message}); fix the user or password in DATABASE_URL`;
    case '3D000': // invalid_catalog_name
      return `${errno.message} at ${target}; create it (createdb) or name an existing database in DATABASE_URL`;
    case '42501': // insufficient_privilege
      return `PostgreSQL at ${target} denied a permission Easel needs (${errno.message}); grant it to the DATABASE_URL user`;
    default:
      return undefined;
  }
}

const FILE_PROBLEMS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENOENT: 'cannot be created there',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'already exists and is not a directory',
  EDQUOT: 'disk quota exceeded',
};

function explainFile(errno: Errno): string | undefined {
  const problem = errno.code && FILE_PROBLEMS[errno.code];
  if (!problem || !errno.path) return undefined;
  return `cannot use ${errno.path}: ${problem}; check the path and its permissions (EASEL_DATA_DIR sets where Easel keeps its data)`;
}

function explainUserPath(error: UserPathError): string {
  const code = errnoOf(error.cause)?.code;
  const problem = (code && FILE_PROBLEMS[code]) ?? 'cannot be written';
  return `${error.option} ${error.path}: ${problem}; choose a directory you can write to`;
}

/** `postgres://user:secret@db:5432/easel` → `db:5432/easel`: where, without the password. */
export function describeDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    return `${url.hostname || 'localhost'}:${url.port || 5432}${url.pathname}`;
  } catch {
    return 'an unparsable URL';
  }
}
