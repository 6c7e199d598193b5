import SchemaBuilder, {
  BasePlugin,
  createInputValueMapper,
  mapInputFields,
  type PartialResolveInfo,
  type PothosOutputFieldConfig,
  type SchemaTypes,
} from '@pothos/core';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import type { GraphQLInterfaceType } from 'graphql';
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
 * Global ids that cannot name anything find nothing. The relay plugin refuses an id that is not
 * base64 of "Type:id", or that names another type than an argument's `for`, with an untyped
 * "Invalid global ID" error (logged as INTERNAL); this plugin runs before it and puts in place of
 * such an id one of the expected type that matches no row ("Type:0": database ids start at 1). A
 * lookup then answers null, a mutation its NotFoundError, a filter an empty list, exactly as for
 * an out-of-range id or one of something the caller may not see (docs/access.md, "Input checks").
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
      idOrNothing(String(value), mapping.value ?? [], info),
    );
    return {
      ...fieldConfig,
      // First, so the relay plugin's own decoding only ever sees ids it accepts.
      argMappers: [(args, _context, info) => mapper(args, undefined, info), ...fieldConfig.argMappers],
    };
  }
}

type ForTypes = readonly { typename: string }[];

/** `globalId` if it names an object of one of `forTypes` (of any Node type when there are none). */
function idOrNothing(globalId: string, forTypes: ForTypes, info: PartialResolveInfo): string {
  let typename: string | null;
  try {
    typename = decodeGlobalID(globalId).typename;
  } catch {
    typename = null;
  }
  const expected =
    forTypes.length > 0
      ? forTypes.map((type) => type.typename)
      : info.schema.getPossibleTypes(info.schema.getType('Node') as GraphQLInterfaceType).map((type) => type.name);
  if (typename !== null && expected.includes(typename)) return globalId;
  // With no `for` (node, nodes, filters) any Node type does: none has a row 0.
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
