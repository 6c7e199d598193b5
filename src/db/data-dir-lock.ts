import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * An exclusive lock on a PGlite data directory, held from before PGlite opens it until after it is
 * closed. PGlite is PostgreSQL inside one process, with none of the server's own guards: a second
 * process on the same files starts without complaint, each keeps its own view of the data in
 * memory, and whichever writes last loses the other's writes.
 *
 * The lock is the file `drydock.lock` in the directory, holding the owner's pid, its start time
 * (from /proc, so that a pid reused by another process does not pass for the owner), host name
 * and a random nonce. Every version of it is written in full to a file of its own first and only
 * then put in place, so a reader never sees it half-written:
 *
 * - free directory: `link(temp, lock)`, which fails with EEXIST when the name is taken, exactly
 *   like open(..., 'wx');
 * - taken: if its owner is alive, refuse; if not (kill -9, a crash, a reboot), it is stale and
 *   taken over.
 *
 * Taking over needs care. Two processes that both find the same stale lock must not both win,
 * as they would with "unlink, then create": the slower one would unlink the faster one's fresh
 * lock. So the right to replace one stale version is itself a lock, the file
 * `drydock.lock.takeover-<hash of that version>`, taken by this same procedure (recursively):
 * exactly one contender gets it, checks that the stale version is still in place and renames its
 * own over it (rename replaces atomically, the lock name is never missing meanwhile); the others
 * wait for it and then find a live owner. A contender that died holding the right leaves a
 * stale takeover file, which the next one takes over the same way.
 *
 * A process that dies holds nothing: its pid is gone (or belongs to a process started at another
 * time), so the next start takes over. A lock written on another host is never judged stale:
 * its pid means nothing here (another machine, another container's pid namespace), so the
 * message says to delete the file once that process is known to be gone.
 */

export const LOCK_FILE = 'drydock.lock';

/** How long a contender waits for another one that is taking over the same stale lock. */
const TAKEOVER_WAIT_MS = 5_000;
const RETRY_MS = 10;

interface Owner {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat), null where unknown. */
  start: string | null;
  host: string;
  /** When the lock was taken, for people reading the file. */
  since: string;
  nonce: string;
}

/** What another process's lock file says; `raw` identifies this version of it. */
interface Found {
  raw: string;
  owner: Owner | null;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
    readonly host: string,
  ) {
    const who =
      pid === process.pid && host === hostname()
        ? `this process (pid ${pid}) already has ${dir} open`
        : host === hostname()
          ? `another Drydock process (pid ${pid}) has ${dir} open`
          : `another Drydock process (pid ${pid} on host ${host}) has ${dir} open`;
    const remove = host === hostname() ? '' : ` (if that process no longer runs, delete ${join(dir, LOCK_FILE)})`;
    super(
      `${who}; PGlite serves one process: stop it${remove}, choose another DATA_DIR, ` +
        'or use PostgreSQL (DATABASE_URL) for several processes',
    );
    this.name = 'DataDirInUseError';
  }
}

/** Thrown inside `acquire`: the file names a live owner. */
class Held extends Error {
  constructor(readonly owner: Owner) {
    super('held');
  }
}

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file, if it is still this lock's. */
  release(): Promise<void>;
}

/** Nonces of the locks (and takeover files) this process holds or is taking right now. */
const heldHere = new Set<string>();

/** The process's start time, field 22 of /proc/<pid>/stat; null where there is no /proc. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function parse(raw: string): Owner | null {
  try {
    const value = JSON.parse(raw) as Partial<Owner>;
    const { pid, start, host, since, nonce } = value;
    // pid 0 and negative pids address process groups in kill(): never take them from a file.
    if (!Number.isInteger(pid) || (pid as number) <= 0 || typeof host !== 'string' || typeof nonce !== 'string') {
      return null;
    }
    return { pid: pid as number, start: typeof start === 'string' ? start : null, host, since: since ?? '', nonce };
  } catch {
    return null;
  }
}

function isAlive(owner: Owner | null): boolean {
  // Unreadable (a file truncated by a power loss, say): nobody running wrote it.
  if (!owner) return false;
  if (owner.host !== hostname()) return true;
  // This pid in an earlier life (a restarted container gets the same pid), unless we hold it.
  if (owner.pid === process.pid) return heldHere.has(owner.nonce);
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = startTime(owner.pid);
  return owner.start === null || start === null || start === owner.start;
}

const isCode = (error: unknown, code: string) => (error as NodeJS.ErrnoException | null)?.code === code;

async function readFound(path: string): Promise<Found | null> {
  try {
    const raw = await readFile(path, 'utf8');
    return { raw, owner: parse(raw) };
  } catch (error) {
    if (isCode(error, 'ENOENT')) return null;
    throw error;
  }
}

/** A complete file of our own beside `path`, to be linked or renamed into place. */
async function writeTemp(path: string, content: string): Promise<string> {
  const temp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, content, { flag: 'wx' });
  return temp;
}

/** Creates `path` with `content` unless it exists; the file appears complete or not at all. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const temp = await writeTemp(path, content);
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if (isCode(error, 'EEXIST')) return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Makes `path` hold `content` (ours), or throws Held with the live owner it holds instead. */
async function acquire(path: string, content: string): Promise<void> {
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  for (;;) {
    if (await createExclusive(path, content)) return;
    const found = await readFound(path);
    if (!found) continue; // released between the two steps: try again
    if (isAlive(found.owner)) throw new Held(found.owner!);

    // Stale: only the holder of this version's takeover file may replace it.
    const version = createHash('sha256').update(found.raw).digest('hex').slice(0, 16);
    const takeover = `${path}.takeover-${version}`;
    try {
      await acquire(takeover, content);
    } catch (error) {
      // Another live contender is replacing this version: wait for it, then meet its lock.
      if (!(error instanceof Held) || Date.now() > deadline) throw error;
      await sleep(RETRY_MS);
      continue;
    }
    try {
      // Still that version (only a takeover holder replaces it, and a fresh lock needs the name
      // free): replace it in one step.
      if ((await readFound(path))?.raw === found.raw) {
        await rename(await writeTemp(path, content), path);
        return;
      }
    } finally {
      await unlink(takeover).catch(() => {});
    }
  }
}

/**
 * Locks `dir` for this process, taking over a lock left by a process that died; throws
 * DataDirInUseError naming the live owner otherwise. The directory must exist.
 */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE);
  const owner: Owner = {
    pid: process.pid,
    start: startTime(process.pid),
    host: hostname(),
    since: new Date().toISOString(),
    nonce: randomBytes(16).toString('hex'),
  };
  const content = JSON.stringify(owner) + '\n';
  heldHere.add(owner.nonce);
  try {
    await acquire(path, content);
  } catch (error) {
    heldHere.delete(owner.nonce);
    if (error instanceof Held) throw new DataDirInUseError(dir, error.owner.pid, error.owner.host);
    throw error;
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      try {
        // Ours until we remove it: nobody takes over the lock of a live process.
        if ((await readFound(path))?.raw === content) await unlink(path);
      } catch (error) {
        // The directory is gone already (a test's temporary one, say): nothing to release.
        if (!isCode(error, 'ENOENT')) throw error;
      } finally {
        heldHere.delete(owner.nonce);
      }
    },
  };
}
