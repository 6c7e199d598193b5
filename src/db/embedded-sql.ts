import { protocol, type messages, type PGlite } from '@electric-sql/pglite';
import { prepareValue } from 'pg/lib/utils.js';
import type { Prisma } from '../generated/prisma/client.js';
import { decodeRow, rowShape, type RowShape } from './row-shapes.js';
import {
  GENERIC_PLANS,
  nameOf,
  SORTS_BACK,
  SORTS_OFF,
  statement,
  types,
  wantsGenericPlan,
  wantsIndexOrder,
  type RawQueries,
} from './statements.js';

// The allocator's statements on PGlite, through its wire protocol with prepared statements.
// PGlite's own query() parses, describes and plans every statement again, in five calls into the
// database per statement; through the Prisma client each statement costs more again. Planning is
// most of a short statement's cost in the embedded database (its file system answers the
// planner's size checks with a system call each), so a statement parsed once and run by name is
// an order of magnitude cheaper. PGlite is one connection: its own mutexes keep a transaction's
// statements from interleaving with anyone else's, as its transaction() does.

const { serialize } = protocol;
type Message = messages.BackendMessage;

/** Statement names already parsed on each database (prepared statements live as long as it). */
const preparedOn = new WeakMap<PGlite, Set<string>>();
/** Statement shapes are finite; a bound keeps a mistake from growing the database's memory. */
const MAX_PREPARED = 10_000;

interface Result {
  rows: Record<string, unknown>[];
  rowCount: number;
}

async function prepare(db: PGlite, name: string, text: string): Promise<void> {
  let prepared = preparedOn.get(db);
  if (!prepared) preparedOn.set(db, (prepared = new Set()));
  if (prepared.has(name)) return;
  if (prepared.size >= MAX_PREPARED) {
    await db.execProtocolStream(serialize.query('DEALLOCATE ALL'), { syncToFs: false });
    prepared.clear();
  }
  // Parsed on its own: a statement that does not parse is not recorded as prepared.
  await db.execProtocolStream(concat([serialize.parse({ name, text }), serialize.sync()]), { syncToFs: false });
  prepared.add(name);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** Runs one statement; the caller holds PGlite's transaction mutex. */
function run(db: PGlite, query: TemplateStringsArray | Prisma.Sql, values: unknown[]): Promise<Result> {
  const config = statement(query, values);
  return runNamed(db, config.name!, config.text, config.values ?? []);
}

async function runNamed(db: PGlite, name: string, text: string, values: unknown[]): Promise<Result> {
  return db._runExclusiveQuery(async () => {
    await prepare(db, name, text);
    const bind = serialize.bind({
      statement: name,
      values: values.map((value) => prepareValue(value) as string | null),
    });
    const answers = await db.execProtocolStream(
      concat([bind, serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]),
      { syncToFs: false },
    );
    return result(name, answers);
  });
}

function result(name: string, answers: Message[]): Result {
  const rows: Record<string, unknown>[] = [];
  let shape: RowShape | undefined;
  let rowCount = 0;
  for (const message of answers) {
    if (message.name === 'rowDescription') {
      shape = rowShape(name, (message as messages.RowDescriptionMessage).fields, types);
    } else if (message.name === 'dataRow') {
      rows.push(decodeRow(shape!, (message as messages.DataRowMessage).fields));
    } else if (message.name === 'commandComplete') {
      // "UPDATE 3", "INSERT 0 1", "SELECT 5": the count is the last word.
      const { text } = message as messages.CommandCompleteMessage;
      rowCount = Number(text.slice(text.lastIndexOf(' ') + 1)) || 0;
    }
  }
  return { rows, rowCount };
}

class EmbeddedQueries implements RawQueries {
  constructor(
    private readonly runStatement: (query: TemplateStringsArray | Prisma.Sql, values: unknown[]) => Promise<Result>,
  ) {}

  async $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<T> {
    return (await this.runStatement(query, values)).rows as T;
  }

  async $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Promise<number> {
    return (await this.runStatement(query, values)).rowCount;
  }
}

/** Statements outside a transaction, each its own, as PGlite's query() runs them. */
export function embeddedQueries(db: PGlite): RawQueries {
  return new EmbeddedQueries((query, values) => alone(db, () => run(db, query, values)));
}

/** One statement outside a transaction, in text with $1… placeholders (the job queue's own). */
export async function embeddedStatement(
  db: PGlite,
  text: string,
  values: unknown[],
): Promise<Record<string, unknown>[]> {
  return (await alone(db, () => runNamed(db, nameOf(text), text, values))).rows;
}

async function alone(db: PGlite, body: () => Promise<Result>): Promise<Result> {
  const outcome = await db._runExclusiveTransaction(body);
  await db.syncToFs();
  return outcome;
}

async function simple(db: PGlite, text: string): Promise<string | undefined> {
  const answers = await db._runExclusiveQuery(() => db.execProtocolStream(serialize.query(text), { syncToFs: false }));
  const done = answers.find((message) => message.name === 'commandComplete');
  return (done as messages.CommandCompleteMessage | undefined)?.text;
}

/**
 * Runs `fn` in a transaction on PGlite, holding its transaction mutex throughout. A throw rolls
 * back; a transaction that outlives `timeoutMs` fails its next statement and rolls back, as on
 * PostgreSQL (raw-sql.ts).
 */
export function embeddedTransaction<T>(db: PGlite, timeoutMs: number, fn: (tx: RawQueries) => Promise<T>): Promise<T> {
  return db._runExclusiveTransaction(async () => {
    const startedAt = performance.now();
    const unexpired = () => {
      if (performance.now() - startedAt > timeoutMs) throw new Error(`transaction expired after ${timeoutMs} ms`);
    };
    let closed = false;
    await simple(db, 'BEGIN');
    const tx = new EmbeddedQueries(async (query, values) => {
      if (closed) throw new Error('this transaction has ended');
      unexpired();
      if (wantsGenericPlan(query)) await simple(db, GENERIC_PLANS);
      if (!wantsIndexOrder(query)) return run(db, query, values);
      await simple(db, SORTS_OFF);
      const rows = await run(db, query, values);
      // Not after a failure: the transaction is aborted then, and rolling back undoes SORTS_OFF.
      await simple(db, SORTS_BACK);
      return rows;
    });
    try {
      const value = await fn(tx);
      unexpired();
      closed = true;
      if ((await simple(db, 'COMMIT')) !== 'COMMIT') throw new Error('the transaction rolled back at commit');
      return value;
    } catch (error) {
      if (!closed) {
        closed = true;
        await simple(db, 'ROLLBACK');
      }
      throw error;
    } finally {
      await db.syncToFs();
    }
  });
}
