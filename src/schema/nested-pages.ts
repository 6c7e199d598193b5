import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import { visibleWhere } from '../access/policy.js';
import { whereSql } from '../access/where-sql.js';
import { rawQueries } from '../db/raw-sql.js';
import { Prisma } from '../generated/prisma/client.js';
import type { GraphQLContext } from './context.js';

// A connection under each row of a list (a resource's leases, a blueprint's resources) read with
// one statement per parent costs as many round trips as the list has rows. The pages of all the
// parents asked for in the same tick are read together instead: one statement finds each parent's
// page of ids (a LATERAL subquery per parent, so every page stays bounded by its own size; Prisma
// pages a nested relation by reading every related row), one more reads those rows through Prisma
// with the selection Pothos asks for. Both filter by the access policy's rule for the child type
// (the first as SQL written from that very rule, see src/access/where-sql.ts), as the per-parent
// query did.

/** A child model and the column naming its parent, as in the schema. */
export interface NestedList {
  model: 'Lease' | 'Resource';
  parentColumn: string;
}

/** The query Pothos hands a connection's resolver (see keyset.ts). */
interface PothosPage {
  cursor?: { id?: unknown } | undefined;
  skip?: number;
  take: number;
  [key: string]: unknown;
}

type Row = { id: number };

const delegateOf = (ctx: GraphQLContext, model: NestedList['model']) =>
  (
    ({ Lease: ctx.db.prisma.lease, Resource: ctx.db.prisma.resource }) as unknown as Record<
      NestedList['model'],
      { findMany(args: object): Promise<Row[]> }
    >
  )[model];

const keyOf = (value: unknown) =>
  JSON.stringify(value, (_key, inner: unknown) => (typeof inner === 'bigint' ? `${inner}n` : inner));

async function readPages(
  ctx: GraphQLContext,
  list: NestedList,
  query: PothosPage,
  parentIds: readonly number[],
): Promise<Row[][]> {
  const { cursor, skip: _skip, take, ...selection } = query;
  const parents = [...new Set(parentIds)];
  const position = cursor?.id;
  // Pothos pages backwards with a negative take (last/before): the rows just before the cursor.
  const backwards = take < 0;
  if (position !== undefined && typeof position !== 'number' && typeof position !== 'bigint') {
    throw new Error('a nested page was handed a cursor that is not an id');
  }
  const range =
    position === undefined
      ? Prisma.sql`true`
      : backwards
        ? Prisma.sql`c.id < ${String(position)}::bigint`
        : Prisma.sql`c.id > ${String(position)}::bigint`;
  const visible = visibleWhere(ctx.actor, list.model);
  const pages = await (
    await rawQueries(ctx.db)
  ).$queryRaw<{ parent: number; id: number }[]>(
    Prisma.sql`SELECT p.id::int AS parent, page.id FROM jsonb_array_elements_text(${JSON.stringify(parents)}::jsonb) AS p(id)
      CROSS JOIN LATERAL (
        SELECT c.id FROM ${Prisma.raw(`"${list.model}"`)} AS c
        WHERE c.${Prisma.raw(`"${list.parentColumn}"`)} = p.id::int AND ${range} AND ${whereSql(list.model, 'c', visible)}
        ORDER BY c.id ${Prisma.raw(backwards ? 'DESC' : 'ASC')} LIMIT ${Math.abs(take)}
      ) AS page`,
  );
  const parentOf = new Map(pages.map((row) => [row.id, row.parent]));
  // The policy's own where again, through Prisma: the rows are read as every other list reads them.
  const rows =
    pages.length === 0
      ? []
      : await delegateOf(ctx, list.model).findMany({
          ...selection,
          ...('select' in selection ? { select: { ...(selection['select'] as object), id: true } } : {}),
          where: { AND: [{ id: { in: [...parentOf.keys()] } }, visible] },
          orderBy: { id: 'asc' },
        });
  const byParent = new Map<number, Row[]>(parents.map((parent) => [parent, []]));
  for (const row of rows) byParent.get(parentOf.get(row.id)!)?.push(row);
  // A parent asked for twice gets a list of its own each time.
  return parentIds.map((parent) => [...byParent.get(parent)!]);
}

// Per request (and per subscription event: freshLoaderCache gives each event a new context
// cache), one loader per field and page: parents asking for the same page go out together.
const loadersOf = createContextCache(() => new Map<string, DataLoader<number, Row[]>>());

/**
 * The rows of `parentId`'s page of `list`, as `findMany(keyset(query, ...))` would read them for
 * that parent alone, read together with the pages of the other parents asked for in this tick.
 */
export function nestedPage<T>(
  ctx: GraphQLContext,
  list: NestedList,
  query: PothosPage,
  parentId: number,
): Promise<T[]> {
  const loaders = loadersOf(ctx);
  const key = keyOf([list, query]);
  let loader = loaders.get(key);
  if (!loader) {
    // Uncached: a mutation that reads the same page after a change must see the change.
    loader = new DataLoader((ids) => readPages(ctx, list, query, ids), { cache: false, maxBatchSize: 1_000 });
    loaders.set(key, loader);
  }
  return loader.load(parentId) as Promise<T[]>;
}
