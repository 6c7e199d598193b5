import { randomInt } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../db/database.js';
import { bookkeeping } from './bookkeeping.js';

/**
 * Ties this process's job claims to a session-level advisory lock, so that another process can
 * tell at once that the claimant died: PostgreSQL drops the lock with the connection, which the
 * kernel closes the moment the process dies, however it died. The claim TTL stays what bounds a
 * hung (not dead) process, so a slow job of a live process keeps its claim as long as it runs.
 *
 * The lock is the pair (LOCK_CLASS, key); claims name the key at the end of their token (`...@L<key>`).
 * PGlite needs no lock: one process at a time has its data (Database.exclusive), so claims name
 * that process's opening of it instead (`...@H<holder>`), and at start every claim naming another
 * is a dead process's (expireClaimsOfEarlierHolders).
 */
const LOCK_CLASS = 0x44727964;
const tokenPattern = '@L([0-9]+)$';
const holderSuffix = (holder: string) => `@H${holder}`;

export class ProcessLiveness {
  private client: pg.Client | undefined;
  private key: number | undefined;
  private closed = false;

  constructor(
    private readonly db: Database,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** False on PGlite: claims there are not tied to a process. */
  get enabled(): boolean {
    return this.db.url !== undefined && this.db.url !== '';
  }

  /** Suffix of this process's claim tokens ('' on PostgreSQL until the lock is held). */
  get suffix(): string {
    if (this.db.exclusive) return holderSuffix(this.db.exclusive.holder);
    return this.key === undefined ? '' : `@L${this.key}`;
  }

  /** Takes the process's lock; resolves once it is held (at once on PGlite). */
  async acquire(): Promise<void> {
    if (!this.enabled || this.closed) return;
    const client = new pg.Client({ connectionString: this.db.url });
    // A lost lock connection (a database restart) makes this process's claims look dead to the
    // others, which then run those jobs again: every job is an update that may run once more.
    // The lock is taken again with the same key, so that claims made since stay tied to it.
    client.on('error', (error) => {
      this.onError(error);
      if (this.client === client) this.client = undefined;
      void client.end().catch(() => {});
      if (!this.closed) setTimeout(() => void this.acquire().catch(this.onError), 500);
    });
    await client.connect();
    for (;;) {
      const key = this.key ?? randomInt(1, 2 ** 31 - 1);
      const rows = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1::int, $2::int) AS held', [
        LOCK_CLASS,
        key,
      ]);
      if (rows.rows[0]?.held) {
        this.key = key;
        break;
      }
      // Another process (of this or another database) has this key: a new process takes another.
      if (this.key !== undefined) {
        await client.end();
        throw new Error(`the queue's process lock ${key} is held by another session`);
      }
    }
    if (this.closed) await client.end();
    else this.client = client;
  }

  async release(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    await client?.end();
  }
}

/**
 * Makes the claims of processes whose lock is free (they died) claimable now, as if expired.
 * Returns how many; the caller's worker then claims them as any due job.
 */
export async function expireClaimsOfDeadProcesses(db: Database, now: Date): Promise<number> {
  const rows = await bookkeeping(db).query(
    `UPDATE "Job" SET "lockedUntil" = '1970-01-01'::timestamp
     WHERE "lockedUntil" >= $1::timestamp AND "lockedBy" ~ '${tokenPattern}'
       AND substring("lockedBy" from '${tokenPattern}')::bigint NOT IN (
         SELECT objid::bigint FROM pg_locks
         WHERE locktype = 'advisory' AND classid = ${LOCK_CLASS} AND objsubid = 2 AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
     RETURNING id::text AS id`,
    [now.toISOString()],
  );
  return rows.length;
}

/**
 * PGlite: makes every claim that this opening of the data did not make claimable now, as if
 * expired. Nobody else can have the data open (Database.exclusive), so their claimants are dead:
 * typically a process killed with -9 whose lock file this one took over. Waiting for those claims
 * to expire would hold their jobs up for the whole claim TTL. Returns how many.
 */
export async function expireClaimsOfEarlierHolders(db: Database, now: Date): Promise<number> {
  if (!db.exclusive) return 0;
  const rows = await bookkeeping(db).query(
    `UPDATE "Job" SET "lockedUntil" = '1970-01-01'::timestamp
     WHERE "lockedUntil" >= $1::timestamp AND "lockedBy" NOT LIKE $2
     RETURNING id::text AS id`,
    // The holder is hex: nothing in it is special to LIKE.
    [now.toISOString(), `%${holderSuffix(db.exclusive.holder)}`],
  );
  return rows.length;
}
