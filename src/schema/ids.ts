import { visibleWhere, type GuardedType } from '../access/policy.js';
import type { GraphQLContext } from './context.js';

/** The database id inside a decoded global id, or null when it cannot be one of ours. */
export function databaseId(globalId: { id: string }): number | null {
  return /^[1-9]\d{0,9}$/.test(globalId.id) && Number(globalId.id) <= 2_147_483_647 ? Number(globalId.id) : null;
}

/**
 * The `findUnique` of a node type: node(id)/nodes(ids) and Pothos' own re-reads go through the
 * policy like any list does, and an id that cannot be ours finds nothing (never a database error).
 */
export function visibleNode<T extends GuardedType>(type: T) {
  return (id: string, ctx: GraphQLContext) => ({
    // 0 is never an id (they start at 1): a malformed id simply matches nothing.
    id: databaseId({ id }) ?? 0,
    AND: [visibleWhere(ctx.actor, type)],
  });
}
