import SchemaBuilder, {
  BasePlugin,
  createInputValueMapper,
  mapInputFields,
  type PartialResolveInfo,
  type PothosOutputFieldConfig,
  type SchemaTypes,
} from '@pothos/core';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError, type GraphQLInterfaceType } from 'graphql';
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

/**
 * The one check of every global id argument and input field, before the relay plugin decodes it
 * (which would refuse a bad one with an untyped "Invalid global ID", logged as INTERNAL).
 *
 * An id of another object type than the field's `for` is the caller's mistake, not a lookup that
 * may miss: it is refused with a BAD_USER_INPUT error naming the field. Used as it is, its number
 * would name an unrelated row of the expected type (a resource's id as a blueprint's).
 *
 * An id that cannot name anything (not base64 of "Type:id", a type that does not exist, a number
 * that is no database id) finds nothing: in its place goes one of the expected type that matches
 * no row ("Type:0": database ids start at 1). A lookup then answers null, a mutation its NotFoundError, a filter an empty list,
 * exactly as for an out-of-range id or one of something the caller may not see (docs/access.md,
 * "Input checks").
 */
export class GlobalIdsFindNothingPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  private readonly mappingCache = new Map();

  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>): PothosOutputFieldConfig<Types> {
    const mappings = mapInputFields(
      fieldConfig.args,
      this.buildCache,
      (input) => {
        const extensions = input.extensions as { isRelayGlobalID?: boolean; relayGlobalIDFor?: ForTypes } | undefined;
        return extensions?.isRelayGlobalID ? (extensions.relayGlobalIDFor ?? []) : null;
      },
      this.mappingCache,
    );
    if (!mappings) return fieldConfig;
    const mapper = createInputValueMapper(mappings, (value, mapping, info: PartialResolveInfo) =>
      idOrNothing(String(value), mapping.config.name, mapping.value ?? [], info),
    );
    return {
      ...fieldConfig,
      // First, so the relay plugin's own decoding only ever sees ids it accepts.
      argMappers: [(args, _context, info) => mapper(args, undefined, info), ...fieldConfig.argMappers],
    };
  }
}

type ForTypes = readonly { typename: string }[];

/**
 * `globalId` if it names an object of one of `forTypes` (of any Node type when there are none);
 * throws when it names an object of another Node type.
 */
function idOrNothing(globalId: string, field: string, forTypes: ForTypes, info: PartialResolveInfo): string {
  let typename: string | null;
  try {
    const decoded = decodeGlobalID(globalId);
    // "Lease:abc" or "Lease:-1" names no lease, let alone one given in the wrong place.
    typename = databaseId(decoded) === null ? null : decoded.typename;
  } catch {
    typename = null;
  }
  const nodeTypes = info.schema
    .getPossibleTypes(info.schema.getType('Node') as GraphQLInterfaceType)
    .map((type) => type.name);
  const expected = forTypes.length > 0 ? forTypes.map((type) => type.typename) : nodeTypes;
  if (typename !== null && expected.includes(typename)) return globalId;
  if (typename !== null && nodeTypes.includes(typename)) {
    throw new GraphQLError(`${field}: expected the id of a ${expected.join(' or ')}, got the id of a ${typename}`, {
      extensions: { code: 'BAD_USER_INPUT', field, expected, got: typename },
    });
  }
  // With no `for` (node, nodes) any Node type does: none has a row 0.
  return encodeGlobalID(expected[0]!, '0');
}

export const globalIdsFindNothing = 'globalIdsFindNothing';
SchemaBuilder.registerPlugin(globalIdsFindNothing, GlobalIdsFindNothingPlugin);

declare global {
  // Pothos names its plugins in this global namespace; declaration merging is the only way in.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      globalIdsFindNothing: GlobalIdsFindNothingPlugin<Types>;
    }
  }
}
