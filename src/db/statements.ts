import { createHash } from 'node:crypto';
import pg from 'pg';
import { Prisma } from '../generated/prisma/client.js';
import { utcTimestamp } from './timestamps.js';

// The allocator's statements as both databases' own drivers send them: plain pg on PostgreSQL
// (raw-sql.ts), PGlite's wire protocol in process (embedded-sql.ts).
//
// Why not the Prisma client: a lease update is a handful of small statements, and through the
// Prisma client each (and each transaction's BEGIN and COMMIT) cost several times the CPU of the
// same statement sent by pg, a large share of the server's CPU per lease. The statements and
// their results are the same as through Prisma's $queryRaw: the conversions below are the ones it
// makes for the column types the allocator reads.

// Results as Prisma's $queryRaw gives them: `timestamp` columns hold UTC (as Prisma writes them),
// bigint is a BigInt; json is parsed, and the rest is pg's own parsing.
const TIMESTAMP = 1114;
const INT8 = 20;
const parsers: Record<number, (value: string) => unknown> = {
  [TIMESTAMP]: utcTimestamp,
  [INT8]: (value) => BigInt(value),
};
export const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    (format === undefined || format === 'text') && parsers[oid]
      ? parsers[oid]
      : pg.types.getTypeParser(oid, format as 'text'),
} as pg.CustomTypesConfig;

// Parameters as Prisma sends them: a Date as UTC wall time (the columns have no zone).
const pad = (n: number, width = 2) => String(n).padStart(width, '0');
function argument(value: unknown): unknown {
  if (value instanceof Date) {
    return (
      `${pad(value.getUTCFullYear(), 4)}-${pad(value.getUTCMonth() + 1)}-${pad(value.getUTCDate())} ` +
      `${pad(value.getUTCHours())}:${pad(value.getUTCMinutes())}:${pad(value.getUTCSeconds())}.${pad(value.getUTCMilliseconds(), 3)}`
    );
  }
  if (Array.isArray(value)) return value.map(argument);
  return value;
}

// Statements are prepared (named) on each connection: the allocator sends a few dozen shapes
// of statement over and over, and parsing and planning its bigger ones (a lease's lock with what
// allocation reads, a transition with its log) cost PostgreSQL more than running them. Names are
// derived from the text, so one name is always one text; the shapes are finite, and so is this.
const names = new Map<string, string>();
export function nameOf(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = `drydock_${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`;
    if (names.size >= 10_000) names.clear();
    names.set(text, name);
  }
  return name;
}

/** A statement as the drivers send it: named (prepared on each connection), with the parsers above. */
export type NamedStatement = pg.QueryConfig & { name: string; types: pg.CustomTypesConfig };

export function statement(query: TemplateStringsArray | Prisma.Sql, values: unknown[]): NamedStatement {
  const sql = query instanceof Prisma.Sql ? query : Prisma.sql(query, ...(values as Prisma.Sql[]));
  // Prisma.Sql joins its text anew on every read of it.
  const text = sql.text;
  return { name: nameOf(text), text, values: sql.values.map(argument), types };
}

/** Statements marked for a driver or a caller to treat apart: `mark` returns the statement it marks. */
function statementMark() {
  const marked = new WeakSet<Prisma.Sql>();
  return {
    mark(sql: Prisma.Sql): Prisma.Sql {
      marked.add(sql);
      return sql;
    },
    has: (query: TemplateStringsArray | Prisma.Sql): boolean => query instanceof Prisma.Sql && marked.has(query),
  };
}

// PostgreSQL plans a prepared statement anew on every run while it estimates a plan made for the
// values at hand cheaper than the generic one. For a statement whose shape changes with its values
// (empty arrays, a NULL that switches a part off) that is every run, and planning a big one costs
// more than running it. Such a statement is marked; it runs its generic plan, planned once per
// connection (SET LOCAL plan_cache_mode before it: the rest of its transaction plans the same way).
const generic = statementMark();

/** Marks `sql` to run its generic plan (see above); only inside a transaction. */
export const planGenerically = generic.mark;
export const wantsGenericPlan = generic.has;

export const GENERIC_PLANS = 'SET LOCAL plan_cache_mode = force_generic_plan';

// A statement whose every ORDER BY ... LIMIT is meant to be read in the order of an index, so
// that what it reads stays bounded however long the range is (a type's queue). The planner may
// sort the range instead when its statistics say the range is short, or keep such a plan made
// while it was (a generic plan lasts the connection's life): then every run reads all of it. Such
// a statement is planned with sorts priced out (SORTS_OFF before it, SORTS_BACK after it, in the
// same write), which leaves the index order the only way to read its ranges; a sort it cannot do
// without (of the few rows those ranges gave) it still does.
const indexOrdered = statementMark();

/** Marks `sql` to be planned in index order (see above); only inside a transaction. */
export const planInIndexOrder = indexOrdered.mark;
export const wantsIndexOrder = indexOrdered.has;

export const SORTS_OFF = 'SET LOCAL enable_sort = off';
export const SORTS_BACK = 'SET LOCAL enable_sort TO DEFAULT';

// A statement that only reads: it takes no lock and writes nothing, so a scheduling pass may send
// it where it sends no other, and drop its answer (allocator/scheduler/watched-tx.ts).
const onlyReads = statementMark();

/** Marks `sql` as one that only reads (see above). */
export const readOnly = onlyReads.mark;
export const isReadOnly = onlyReads.has;

/**
 * What the allocator asks of a database: raw statements, as Prisma's tagged templates write them.
 * A Prisma client or transaction is one; the allocator's own statements use plain pg on
 * PostgreSQL (raw-sql.ts) and PGlite's wire protocol on PGlite (embedded-sql.ts) instead.
 */
export interface RawQueries {
  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T>;
  $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number>;
  /**
   * A transaction's last statement and its COMMIT in one round trip (plain pg only; absent
   * elsewhere, where the caller sends the statement as usual and the transaction commits after).
   * Nothing that can fail may follow it: once it returns, the transaction has committed.
   */
  $queryRawAndCommit?<T = unknown>(query: Prisma.Sql): Promise<T>;
}
