import type { Socket } from 'node:net';
import { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';
import type { Database } from './database.js';
import { runDecoded } from './decoded-query.js';
import { embeddedQueries, embeddedTransaction } from './embedded-sql.js';
import {
  GENERIC_PLANS,
  SORTS_BACK,
  SORTS_OFF,
  statement,
  wantsGenericPlan,
  wantsIndexOrder,
  type NamedStatement,
  type RawQueries,
} from './statements.js';
import type { Prisma } from '../generated/prisma/client.js';

class PgQueries implements RawQueries {
  constructor(private readonly client: pg.Pool | pg.PoolClient) {}

  async $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    return (await runDecoded(this.client, statement(query, values))).rows as T;
  }

  async $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    return (await runDecoded(this.client, statement(query, values))).rowCount ?? 0;
  }
}

// The pool of the database's Prisma client (adapter-pg is given it in db/database.ts): plain pg
// statements share its connections instead of opening more.
const pools = new WeakMap<Database, Promise<pg.Pool | null>>();

function poolOf(db: Database): Promise<pg.Pool | null> {
  let pool = pools.get(db);
  if (!pool) {
    const factory = db.adapterFactory;
    pool =
      db.kind === 'postgresql' && factory instanceof PrismaPg
        ? factory.connect().then((adapter) => adapter.underlyingDriver())
        : Promise.resolve(null);
    pools.set(db, pool);
  }
  return pool;
}

/** PostgreSQL's SQLSTATE for a statement refused because its transaction had already failed. */
const IN_FAILED_TRANSACTION = '25P02';

/** Statements outside a transaction (each one its own): plain pg on PostgreSQL, PGlite's protocol on PGlite. */
export async function rawQueries(db: Database): Promise<RawQueries> {
  if (db.embedded) return embeddedQueries(db.embedded);
  const pool = await poolOf(db);
  return pool ? new PgQueries(pool) : db.prisma;
}

/**
 * Runs `fn` in a transaction, with plain pg on PostgreSQL and PGlite's protocol on PGlite
 * (embedded-sql.ts). A throw rolls back; a transaction that outlives `timeoutMs` fails its next
 * statement and rolls back, as the Prisma client's interactive transactions do.
 */
export async function rawTransaction<T>(
  db: Database,
  timeoutMs: number,
  fn: (tx: RawQueries) => Promise<T>,
): Promise<T> {
  if (db.embedded) return embeddedTransaction(db.embedded, timeoutMs, fn);
  const pool = await poolOf(db);
  if (!pool) return db.prisma.$transaction((tx) => fn(tx), { timeout: timeoutMs, maxWait: timeoutMs });
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection that fails while this holds it (terminated by the server) emits an error that
  // nothing else listens to: without this, the process would die of it. The statement in flight
  // fails too, which rolls the transaction back.
  const onError = (error: Error) => (broken = error);
  client.on('error', onError);
  let expired = false;
  const timer = setTimeout(() => (expired = true), timeoutMs);
  const unexpired = () => {
    if (expired) throw new Error(`transaction expired after ${timeoutMs} ms`);
  };
  const tx = new PgTransaction(client, unexpired);
  try {
    const value = await fn(tx);
    if (tx.state === 'open') {
      unexpired();
      await client.query('COMMIT');
    }
    return value;
  } catch (error) {
    // A connection that cannot even roll back is not given back to the pool.
    if (!broken && tx.state !== 'new') await client.query('ROLLBACK').catch((rollback: Error) => (broken = rollback));
    // Statements sent together fail together, and the caller may hear first of one refused only
    // because the transaction was already aborted: the cause is the first that failed.
    if ((error as { code?: string }).code === IN_FAILED_TRANSACTION && tx.failure) throw tx.failure;
    throw error;
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
    tx.close();
    client.release(broken);
  }
}

/**
 * The statements of one transaction on one connection. Its BEGIN is not a round trip of its own:
 * it is written together with the first statement, and the last statement may carry the COMMIT
 * ($queryRawAndCommit). Each statement sent to PostgreSQL costs the server a system call that
 * wakes another process, a large share of its CPU per lease; a transaction with nothing to say
 * sends nothing.
 *
 * pg's pipeline mode writes a query without waiting for the previous one's answer; the socket is
 * corked from a transaction's first statement of a tick until the next tick, so that statements
 * sent together (a BEGIN and the statement behind it; statements a caller starts at once without
 * waiting, as a pass's turn and its heads) leave in one write. Each still has its own answer, and
 * PostgreSQL runs them in order: a failing statement leaves the transaction aborted, the ones
 * behind it fail, and a COMMIT then rolls back, as a COMMIT of an aborted transaction does.
 */
class PgTransaction implements RawQueries {
  state: 'new' | 'open' | 'committed' = 'new';
  /** The first statement of this transaction that failed, in the order they were sent. */
  failure: Error | undefined;
  private corked = false;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly check: () => void,
  ) {
    setPipeline(client, true);
  }

  async $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    return (await this.send(statement(query, values), false, planning(query))).rows as T;
  }

  async $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    return (await this.send(statement(query, values), false, planning(query))).rowCount ?? 0;
  }

  async $queryRawAndCommit<T = unknown>(query: Prisma.Sql): Promise<T> {
    return (await this.send(statement(query, []), true, planning(query))).rows as T;
  }

  /** pg answers a pipeline's statements in the order they were sent, so the first to fail is recorded first. */
  private query(config: NamedStatement | string): Promise<pg.QueryResult> {
    const answer = typeof config === 'string' ? this.client.query(config) : runDecoded(this.client, config);
    return answer.catch((error: Error) => {
      this.failure ??= error;
      throw error;
    });
  }

  private corkUntilNextTick(): void {
    if (this.corked) return;
    const socket = (this.client as unknown as { connection: { stream: Socket } }).connection.stream;
    socket.cork();
    this.corked = true;
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  /** Leaves pipeline mode once nothing is in flight: the connection goes back to the pool as it came. */
  close(): void {
    setPipeline(this.client, false);
  }

  private async send(config: NamedStatement, commit: boolean, plan: Planning): Promise<pg.QueryResult> {
    this.check();
    if (this.state === 'committed') throw new Error('this transaction has committed');
    const begin = this.state === 'new';
    this.state = commit ? 'committed' : 'open';
    this.corkUntilNextTick();
    if (!begin && !commit && !plan.generic && !plan.indexOrder) return this.query(config);
    const sent = [
      begin ? this.query('BEGIN') : null,
      plan.generic ? this.query(GENERIC_PLANS) : null,
      plan.indexOrder ? this.query(SORTS_OFF) : null,
      this.query(config),
      plan.indexOrder ? this.query(SORTS_BACK) : null,
      commit ? this.query('COMMIT') : null,
    ] as const;
    const [began, planned, sortsOff, result, sortsBack, committed] = await Promise.allSettled(sent);
    // The statement's own failure says most; a failed BEGIN or COMMIT otherwise.
    if (result.status === 'rejected') throw result.reason;
    for (const settled of [began, planned, sortsOff, sortsBack, committed])
      if (settled.status === 'rejected') throw settled.reason;
    if (commit && committed.status === 'fulfilled' && (committed.value as pg.QueryResult).command !== 'COMMIT')
      throw new Error('the transaction rolled back at commit');
    return result.value;
  }
}

/** How a statement asks to be planned (statements.ts): its generic plan, and its ranges in index order. */
type Planning = { generic: boolean; indexOrder: boolean };

function planning(query: TemplateStringsArray | Prisma.Sql): Planning {
  return { generic: wantsGenericPlan(query), indexOrder: wantsIndexOrder(query) };
}

/** pg's pipeline mode is a client's setting; the pool's clients are made without it. */
function setPipeline(client: pg.PoolClient, on: boolean): void {
  (client as unknown as { pipeline: boolean }).pipeline = on;
}
