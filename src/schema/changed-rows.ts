import { queryFromInfo } from '@pothos/plugin-prisma';
import type { GraphQLResolveInfo } from 'graphql';
import { rowMatches } from '../access/row-match.js';
import { readThroughOutage } from '../db/connection-loss.js';
import { utcTimestamp } from '../db/timestamps.js';
import type { Prisma } from '../generated/prisma/client.js';
import { getDatamodel } from '../generated/pothos-prisma-types.js';
import type { GraphQLContext } from './context.js';
import { freshLoaderCache } from './event-stream.js';
import { sharedRead } from './shared-reads.js';
import { readAhead } from './read-ahead.js';
import { readSnapshot, type ChangedObject } from './snapshots.js';

export type SelectionQuery = ReturnType<typeof queryFromInfo>;

/** Where a `*Changed` row keeps the log cursor it reflects, for its `changeCursor` field. */
export const CHANGE_CURSOR = Symbol('changeCursor');

/**
 * A dashboard subscription (leasesChanged, resourcesChanged): each event's row as `changedRow`
 * reads it, read ahead of what was sent (read-ahead.ts) and sent in event order, without the
 * rows the subscriber's filter leaves out or that are older than one already sent.
 */
export async function* changedRows<E extends object, T extends object>(
  ctx: GraphQLContext,
  info: GraphQLResolveInfo,
  events: AsyncIterable<E>,
  objectOf: (event: E) => ChangedObject,
  /** The subscriber's filter, for the object with this id. */
  whereOf: (id: number) => object,
  read: (query: SelectionQuery, where: object) => Prisma.PrismaPromise<T | null>,
): AsyncGenerator<T> {
  const seen = new SeenCursors();
  const readOne = async (event: E) => {
    const object = objectOf(event);
    const where = whereOf(object.id);
    const changed = await changedRow(ctx, info, event, object, where, (query) => read(query, where));
    return { id: object.id, ...changed };
  };
  for await (const { id, row, cursor } of readAhead(events, readOne, readAheadLimit(ctx, info)))
    if (!seen.isStale(id, cursor) && row) yield row;
}

/**
 * The row a dashboard subscription (leasesChanged, resourcesChanged) sends for one event, or null
 * when it does not pass the subscriber's filter, with the cursor of the object's newest log entry
 * read in the same snapshot (one REPEATABLE READ transaction), so the cursor says exactly which
 * committed state the row shows. Read in the subscription, not in resolve, since graphql-js cannot
 * skip an event once it reaches resolve; with the selection's relations, in statements that the
 * event's other subscribers with the same filter and selection share; and through a database
 * outage rather than ending the subscription.
 */
export function changedRow<T extends object>(
  ctx: GraphQLContext,
  info: GraphQLResolveInfo,
  event: object,
  object: ChangedObject,
  where: object,
  read: (query: SelectionQuery) => Prisma.PrismaPromise<T | null>,
): Promise<{ row: T | null; cursor: bigint }> {
  // The context lives as long as the subscription: without a fresh loader cache every event would
  // show the object as it was at the first. Before queryFromInfo, which records its mappings there.
  freshLoaderCache(ctx);
  const query = queryFromInfo({ context: ctx, info });
  const plain = plainSnapshot<T>(ctx, event, object, query, where);
  if (plain) return plain.then((found) => found ?? readSelection(ctx, event, object, where, query, read));
  return readSelection(ctx, event, object, where, query, read);
}

function readSelection<T extends object>(
  ctx: GraphQLContext,
  event: object,
  object: ChangedObject,
  where: object,
  query: SelectionQuery,
  read: (query: SelectionQuery) => Prisma.PrismaPromise<T | null>,
): Promise<{ row: T | null; cursor: bigint }> {
  return sharedRead(event, JSON.stringify([object, where, query]), () =>
    readThroughOutage(async () => {
      const [newest, row] = await ctx.db.prisma.$transaction(
        [
          ctx.db.prisma.log.findFirst({
            where: object.kind === 'lease' ? { leaseId: object.id } : { resourceId: object.id },
            orderBy: { id: 'desc' },
            select: { id: true },
          }),
          read(query),
        ],
        { isolationLevel: 'RepeatableRead' },
      );
      const cursor = newest?.id ?? 0n;
      if (row) (row as Record<symbol, unknown>)[CHANGE_CURSOR] = cursor;
      return { row, cursor };
    }),
  );
}

const dateColumns = (model: 'Lease' | 'Resource') =>
  new Set(
    getDatamodel()
      .datamodel.models[model]!.fields.filter((field) => field.type === 'DateTime')
      .map((field) => field.name),
  );
const DATE_COLUMNS = { lease: dateColumns('Lease'), resource: dateColumns('Resource') };

/** A row as to_jsonb gives it, with the timestamps as the client reads them (Date; stored as UTC). */
function decodeRow(kind: ChangedObject['kind'], row: Record<string, unknown>): Record<string, unknown> {
  for (const key of DATE_COLUMNS[kind]) if (typeof row[key] === 'string') row[key] = utcTimestamp(row[key] as string);
  return row;
}

/**
 * The common case in one statement: a selection of the object's own columns only, and a filter
 * the row itself answers (row-match.ts). The object and its newest log id are read in one
 * statement, which is one snapshot, and shared by every subscriber the event woke whatever its
 * filter; each subscriber's filter is then applied in memory. Null when the case does not apply;
 * the promise's null: the filter needs the database after all.
 */
function plainSnapshot<T>(
  ctx: GraphQLContext,
  event: object,
  object: ChangedObject,
  query: SelectionQuery,
  where: object,
): Promise<{ row: T | null; cursor: bigint } | null> | null {
  if (!ownColumnsOnly(query)) return null;
  const snapshot = sharedRead(event, JSON.stringify(['snapshot', object]), () =>
    readThroughOutage(async () => {
      const found = await readSnapshot(ctx.db, object);
      const row = found.row ? decodeRow(object.kind, found.row) : null;
      const cursor = found.cursor;
      if (row) (row as Record<symbol, unknown>)[CHANGE_CURSOR] = cursor;
      return { row, cursor };
    }),
  );
  return snapshot.then(({ row, cursor }) => {
    if (!row) return { row: null, cursor };
    let matches: boolean;
    try {
      matches = rowMatches(where, row);
    } catch {
      return null;
    }
    return { row: matches ? (row as T) : null, cursor };
  });
}

/** How many events of a subscription may be read at once (read-ahead.ts). */
const READ_AHEAD = 64;

/**
 * How far a `*Changed` subscription may read ahead of what it has sent: far, when its selection is
 * the object's own columns (each event's read is one statement of its own, and those in flight
 * together share one); one at a time otherwise, since every read of a selection with relations
 * renews the subscription's one loader cache, which the event before it may still be using.
 */
function readAheadLimit(ctx: GraphQLContext, info: GraphQLResolveInfo): number {
  return ownColumnsOnly(queryFromInfo({ context: ctx, info })) ? READ_AHEAD : 1;
}

const ownColumnsOnly = (query: SelectionQuery) =>
  !Object.values(query).some((part) => part && typeof part === 'object' && Object.keys(part).length > 0);

/** The cursor a `*Changed` row was read at, as its `changeCursor` field shows it. */
export function changeCursorOf(row: object): string | null {
  const cursor = (row as Record<symbol, unknown>)[CHANGE_CURSOR];
  return typeof cursor === 'bigint' ? cursor.toString() : null;
}

/**
 * Per subscription, the newest cursor it has seen of each object, to drop a read older than one
 * already seen: reads shared between subscribers, or made by another process's pace, can finish
 * out of commit order, and a dashboard must never step an object back in time. A read filtered
 * out still counts as seen, or an older read that passed the filter would follow it. Only reads in
 * flight together can cross, so remembering the most recent objects is enough; the bound keeps a
 * long-lived subscription's memory flat.
 */
export class SeenCursors {
  private readonly seen = new Map<number, bigint>();

  constructor(private readonly capacity = 1_024) {}

  /** True when `cursor` is older than one already seen for the object; records it otherwise. */
  isStale(id: number, cursor: bigint): boolean {
    const seen = this.seen.get(id);
    if (seen !== undefined && cursor < seen) return true;
    // Re-inserted, so that iteration order is least recently seen first.
    this.seen.delete(id);
    this.seen.set(id, cursor);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value!);
    return false;
  }
}
