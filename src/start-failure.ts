import { randomBytes } from 'node:crypto';
import { mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from './config.js';
import { redactUrl } from './db/database.js';
import { NewerDatabaseError } from './db/migrate.js';
import { RedisStartError } from './events/event-target.js';

/**
 * What to tell an operator whose server could not start because of a setting, in one line that
 * names it; undefined for anything else (the error is then logged as it is). The system's own
 * words (EADDRINUSE, a getaddrinfo stack) do not say which variable to change.
 */
export function startFailure(
  error: unknown,
  config: Pick<Config, 'host' | 'port' | 'databaseUrl'>,
): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error instanceof UnusableDirectoryError) return error.message;
  if (error instanceof RedisStartError) return error.message;
  // Not a setting, but as plain: which build to run instead.
  if (error instanceof NewerDatabaseError) return error.message;
  const { code, syscall, hostname } = error as NodeJS.ErrnoException & { hostname?: string };
  const listening = syscall === 'listen' || (syscall === 'getaddrinfo' && hostname === config.host);
  if (listening) {
    if (code === 'EADDRINUSE')
      return `PORT ${config.port} is in use on HOST ${config.host} (EADDRINUSE): stop what listens there or choose another PORT`;
    if (code === 'EACCES')
      return `PORT ${config.port} on HOST ${config.host} needs privileges this process does not have: choose a PORT above 1023`;
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      return `HOST ${config.host} is not an address of this machine (${code}): use one of its addresses, 127.0.0.1 or 0.0.0.0`;
  }
  const database = config.databaseUrl ? redactUrl(config.databaseUrl) : undefined;
  if (!database) return undefined;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ETIMEDOUT')
    return `DATABASE_URL ${database} cannot be reached (${code}): check its host and port, and that PostgreSQL runs`;
  // A Unix socket (libpq's ?host=/directory) that is not there.
  if (code === 'ENOENT' && syscall === 'connect')
    return `DATABASE_URL ${database} cannot be reached (ENOENT: ${error.message.replace(/^connect ENOENT /, 'no socket at ')}): check the directory in its ?host= and that PostgreSQL runs`;
  // pg's words when the URL asks for SSL (sslmode) and the server has none.
  if (error.message === 'The server does not support SSL connections')
    return `DATABASE_URL ${database} asks for SSL, which this PostgreSQL server does not offer: enable ssl on the server, or take sslmode out of the URL where the network is trusted`;
  const refused = code ? DATABASE_REFUSALS[code] : undefined;
  // PostgreSQL's own message names the role or the database; it holds no secret.
  if (refused) return `DATABASE_URL ${database} was refused by PostgreSQL: ${error.message} (${code}): ${refused}`;
  return undefined;
}

/** What to do about PostgreSQL refusing the connection, by its error code. */
const DATABASE_REFUSALS: Record<string, string> = {
  '28000': 'check the user in DATABASE_URL, and that pg_hba.conf lets it connect from here',
  '28P01': 'check the user and password in DATABASE_URL',
  '3D000': 'create the database (createdb) or correct the name in DATABASE_URL',
  '53300': 'PostgreSQL has no connection left: raise its max_connections or lower DATABASE_POOL_SIZE',
  '57P03': 'PostgreSQL is starting up or shutting down: start again once it accepts connections',
};

/** A directory setting the process cannot use; the message is the line to show. */
export class UnusableDirectoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnusableDirectoryError';
  }
}

/**
 * Refuses, before anything uses them, the directories this start would write to: DATA_DIR for
 * the embedded database, SSH_STATE_DIR when it was set. Found late, an unusable one spins (Node's
 * recursive mkdir loops forever on a path under /proc), dies with a stack, or fails each ssh
 * command long after start.
 */
export async function checkDirectories(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'sshStateDir' | 'sshStateDirSet'>,
): Promise<void> {
  if (!config.databaseUrl) await usableDirectory('DATA_DIR', config.dataDir, 0o777);
  if (config.sshStateDirSet) {
    // The same rule and mode as the ssh transport's own check (ssh.ts): known_hosts decides which
    // hosts are trusted, so nobody else may write there.
    const info = await usableDirectory('SSH_STATE_DIR', config.sshStateDir, 0o700);
    const uid = process.getuid?.();
    if ((uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
      throw new UnusableDirectoryError(
        `SSH_STATE_DIR ${config.sshStateDir} must belong to this user and be writable by no one else, as it holds the trusted ssh host keys: chown it to this user and chmod go-w it, or point SSH_STATE_DIR elsewhere`,
      );
    }
  }
}

async function usableDirectory(variable: string, dir: string, mode: number) {
  const refuse = (problem: string, detail: string, todo: string) =>
    new UnusableDirectoryError(`${variable} ${dir} ${problem} (${detail}): ${todo}`);
  const elsewhere = `point ${variable} at a directory this process can create and write`;
  const writable = `make it writable by this process or point ${variable} at another directory`;
  try {
    await makeDirectory(dir, mode);
  } catch (error) {
    throw refuse('cannot be created', describe(error), elsewhere);
  }
  const info = await stat(dir);
  // PGlite checks permission bits itself, for root's processes too: with none granting write
  // (or search), it fails inside with a bare errno where the probe below would pass for root.
  if ((info.mode & 0o222) === 0 || (info.mode & 0o111) === 0) {
    throw refuse('is not writable', `permissions ${(info.mode & 0o777).toString(8)}`, writable);
  }
  const probe = join(dir, `.drydock-write-check-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(probe, '');
    await unlink(probe);
  } catch (error) {
    throw refuse('is not writable', describe(error), writable);
  }
  return info;
}

const REASONS: Record<string, string> = {
  ENOTDIR: 'a part of that path is a file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left',
  ENOENT: 'this file system does not allow it there',
};

function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (!code) return String(error);
  return REASONS[code] ? `${code}: ${REASONS[code]}` : code;
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir retries forever when a mkdir fails with
 * ENOENT under a parent that exists (under /proc).
 */
async function makeDirectory(dir: string, mode: number): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    try {
      const info = await stat(at);
      if (!info.isDirectory()) throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw error;
      missing.unshift(at);
    }
  }
  for (const path of missing) {
    try {
      await mkdir(path, { mode });
    } catch (error) {
      // Another process made it meanwhile.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(path)).isDirectory()) throw error;
    }
  }
}
