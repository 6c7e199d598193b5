import { GraphQLError } from 'graphql';
import { builder } from './builder.js';

// Every connection pages by keyset: a cursor is a position in id order, never a row. Pothos's
// prisma plugin hands its resolvers a Prisma `cursor` with `skip: 1`, which finds the cursor's row
// in the whole table, before any filter: a cursor of a row the caller may not see skipped one of
// the caller's own rows instead, and a cursor of a row that does not exist emptied the page, an
// oracle of which ids exist in any table. An id range asks nothing of the row.

/** The type of the id column a list is ordered by, as Pothos's cursor chunk writes it (N: or I:). */
export type IdType = 'Int' | 'BigInt';

interface ConnectionArgs {
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

const CHUNK: Record<IdType, { pattern: RegExp; max: bigint }> = {
  Int: { pattern: /^GPC:N:(0|[1-9]\d{0,9})$/, max: 2_147_483_647n },
  BigInt: { pattern: /^GPC:I:(0|[1-9]\d{0,18})$/, max: 9_223_372_036_854_775_807n },
};

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

function checkCursor(argument: 'after' | 'before', cursor: string | null | undefined, ids: IdType): void {
  if (cursor === null || cursor === undefined) return;
  // Buffer decodes whatever it is given; only a cursor that encodes back to itself was written by us.
  const decoded = Buffer.from(cursor, 'base64').toString();
  const digits = Buffer.from(decoded).toString('base64') === cursor ? CHUNK[ids].pattern.exec(decoded)?.[1] : undefined;
  if (digits === undefined || BigInt(digits) > CHUNK[ids].max) {
    throw badInput(
      `${argument} is not a cursor of this list: pass a cursor (or pageInfo's startCursor or endCursor) it returned.`,
    );
  }
}

const maxConnectionSize = builder.options.prisma.maxConnectionSize ?? 100;

/**
 * Spread into the options of every connection whose cursor is `id`. Pothos parses the cursor
 * before the resolver runs, and one it cannot read, or reads to something Prisma refuses, was an
 * unexpected error; `maxSize` is the one callback of the connection it calls first, so the
 * arguments are checked there and a bad one is the caller's error, a page size past the maximum
 * included (docs/clients.md, "Paging").
 */
export function idCursors(ids: IdType) {
  return {
    maxSize: (args: ConnectionArgs): number => {
      // Relay cuts `first` and then `last` from the same rows, Pothos pages by `last` alone: rather
      // than answer one reading to a client that may have meant the other, both are refused.
      if (args.first !== null && args.first !== undefined && args.last !== null && args.last !== undefined) {
        throw badInput(
          'first and last cannot be used together: page forward with first/after, backward with last/before.',
        );
      }
      // Pothos would serve a larger page cut to the maximum, and a client that stops when a page
      // comes back shorter than it asked for would take the cut for the end of the list.
      for (const argument of ['first', 'last'] as const) {
        const size = args[argument];
        if (size !== null && size !== undefined && size > maxConnectionSize) {
          throw badInput(
            `${argument} must be at most ${maxConnectionSize}: read a longer list page by page, passing pageInfo's ${argument === 'first' ? 'endCursor as after' : 'startCursor as before'}.`,
          );
        }
      }
      checkCursor('after', args.after, ids);
      checkCursor('before', args.before, ids);
      return maxConnectionSize;
    },
  };
}

/** The query Pothos hands a connection's resolver. */
interface PothosPage {
  cursor?: { id?: unknown } | undefined;
  skip?: number;
  take: number;
}

/**
 * The findMany arguments of a connection's page: `query` (from a resolver of a connection that
 * spreads `idCursors`) with its cursor turned into an id range under `where`. Pothos pages
 * backwards with a negative `take` (before or last), so its sign says which side of the cursor
 * the page lies on; the rows come in id order either way, which `take`, the edges' cursors and
 * pageInfo rely on.
 */
export function keyset<Q extends PothosPage, W extends object>(
  query: Q,
  where: W,
): Omit<Q, 'cursor' | 'skip'> & { where: W; orderBy: { id: 'asc' } } {
  const { cursor, skip: _skip, ...page } = query;
  const position = cursor?.id;
  if (position === undefined) return { ...page, where, orderBy: { id: 'asc' } };
  // idCursors let through only integer ids; anything else means it was not spread into this field.
  if (typeof position !== 'number' && typeof position !== 'bigint') throw badInput('Not a cursor of this list.');
  // Every model listed here has an `id` column, so the range is a where of it as much as `where` is.
  const range = { id: query.take < 0 ? { lt: position } : { gt: position } } as W;
  return { ...page, where: { AND: [where, range] } as W, orderBy: { id: 'asc' } };
}
