import {
  defaultFieldResolver,
  getNamedType,
  GraphQLError,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLFieldResolver,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';
import { GUARDED_TYPES, type GuardedType } from '../access/policy.js';
import type { GraphQLContext } from './context.js';

// The schema-level half of the access policy. Every field of every guarded object type (Lease,
// Resource, Log, ...) first asks whether the actor may see its parent row, and every field that
// returns guarded rows drops those the actor may not see (a nullable one becomes null). It wraps
// the built schema rather than each field definition, so a field added later is covered without
// anyone remembering to; the queries' own where filters (visibleWhere) keep lists and
// pagination right, this makes a forgotten filter a refusal instead of a leak.

const guarded = new Set<string>(GUARDED_TYPES);

const notVisible = () => new GraphQLError('Not found.', { extensions: { code: 'NOT_FOUND' } });

const rowId = (row: unknown): number | bigint | null => {
  const id = (row as { id?: unknown } | null)?.id;
  return typeof id === 'number' || typeof id === 'bigint' ? id : null;
};

async function isVisible(ctx: GraphQLContext, type: GuardedType, row: unknown): Promise<boolean> {
  const id = rowId(row);
  return id !== null && (await ctx.access.visible(type, id));
}

async function keepVisible(
  ctx: GraphQLContext,
  type: GuardedType,
  fieldType: GraphQLOutputType,
  result: unknown,
): Promise<unknown> {
  if (result === null || result === undefined) return result;
  const inner = isNonNullType(fieldType) ? fieldType.ofType : fieldType;
  if (isListType(inner) && Array.isArray(result)) {
    const keep = await Promise.all(result.map((row) => isVisible(ctx, type, row)));
    return result.filter((_row, index) => keep[index]);
  }
  if (await isVisible(ctx, type, result)) return result;
  if (isNonNullType(fieldType)) throw notVisible();
  return null;
}

/**
 * Where the parent row's visibility is already known (an admin, or a row this request asked about
 * before), the answer needs no promise: a field that was synchronous stays synchronous, and the
 * rest of the row's fields cost what they cost before the guard.
 */
function parentCheck(ctx: GraphQLContext, type: GuardedType, parent: unknown): boolean | undefined {
  if (ctx.access.all) return true;
  const id = rowId(parent);
  return id === null ? false : ctx.access.known(type, id);
}

/** Wraps every resolver that touches a guarded type; returns the same schema. */
export function guardSchema(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const parentType = guarded.has(type.name) ? (type.name as GuardedType) : null;
    for (const field of Object.values(type.getFields())) {
      const named = getNamedType(field.type);
      const resultType = isObjectType(named) && guarded.has(named.name) ? (named.name as GuardedType) : null;
      if (!parentType && !resultType) continue;
      const resolve: GraphQLFieldResolver<unknown, GraphQLContext> = field.resolve ?? defaultFieldResolver;
      // Decided here, once per field, rather than on every call.
      const filtered: GraphQLFieldResolver<unknown, GraphQLContext> = resultType
        ? async (parent, args, ctx, info) =>
            keepVisible(ctx, resultType, field.type, await resolve(parent, args, ctx, info))
        : resolve;
      field.resolve = (parent, args, ctx: GraphQLContext, info) => {
        // Admins see everything: no question to ask.
        if (ctx.access.all) return resolve(parent, args, ctx, info);
        if (!parentType) return filtered(parent, args, ctx, info);
        const known = parentCheck(ctx, parentType, parent);
        if (known === false) throw notVisible();
        if (known === true) return filtered(parent, args, ctx, info);
        return isVisible(ctx, parentType, parent).then((visible) => {
          if (!visible) throw notVisible();
          return filtered(parent, args, ctx, info);
        });
      };
    }
  }
  return schema;
}
