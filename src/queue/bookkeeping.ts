import pg from 'pg';
import { KEPT_OPEN, type Database } from '../db/database.js';
import { embeddedStatement } from '../db/embedded-sql.js';
import { nameOf } from '../db/statements.js';

/**
 * The queue's own statements (claims, completions, heartbeats) on PostgreSQL go through a small
 * pool of their own, in plain pg and with synchronous_commit off.
 *
 * None of them needs to wait for the disk: a claim or a completion lost with a crash of the
 * database server leaves a job claimed by nobody alive, which the claim expiry runs again, and
 * every job is an update that may run once more. What must be durable, that a job exists when the
 * change that asked for it committed, is written in that change's own transaction. And these run
 * on every job: the client's per-statement cost and a WAL flush each were a good part of a lease
 * cycle. PGlite (one connection, no URL) runs them on that connection (db/embedded-sql.ts).
 *
 * Each is prepared once per connection and always runs the generic plan: they are a few small
 * statements on the job table, whose plan does not depend on the values, and PostgreSQL would
 * otherwise plan the claim again on every run, its estimate of a custom plan being lower.
 */
export interface Bookkeeping {
  query(text: string, values: unknown[]): Promise<Record<string, unknown>[]>;
}

const pools = new WeakMap<Database, { pool: pg.Pool; users: number }>();

/** A worker starts using the queue of `db`; pair with closeBookkeeping. */
export function openBookkeeping(db: Database, onError: (error: Error) => void): void {
  const entry = pools.get(db);
  if (entry) {
    entry.users++;
    return;
  }
  if (!db.url) return;
  const schema = db.schema;
  const pool = new pg.Pool({
    connectionString: db.url,
    max: 2,
    ...KEPT_OPEN,
    // Unreferenced while idle: an idle pool never keeps a process alive.
    allowExitOnIdle: true,
    options: `-c synchronous_commit=off -c plan_cache_mode=force_generic_plan${schema ? ` -c search_path="${schema}"` : ''}`,
  });
  // A connection lost while idle (a database restart) is replaced on the next statement.
  pool.on('error', onError);
  pools.set(db, { pool, users: 1 });
}

export async function closeBookkeeping(db: Database): Promise<void> {
  const entry = pools.get(db);
  if (!entry || --entry.users > 0) return;
  pools.delete(db);
  await entry.pool.end();
}

export function bookkeeping(db: Database): Bookkeeping {
  const entry = pools.get(db);
  if (entry)
    return { query: async (text, values) => (await entry.pool.query({ name: nameOf(text), text, values })).rows };
  const embedded = db.embedded;
  if (embedded) return { query: (text, values) => embeddedStatement(embedded, text, values) };
  return { query: (text, values) => db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(text, ...values) };
}
