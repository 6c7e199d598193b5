import type { Lease, Resource } from '../../generated/prisma/client.js';
import {
  blueprintFrom,
  blueprintSql,
  decodeResource,
  loadBlueprint,
  type BlueprintColumn,
  type LoadedBlueprint,
} from '../blueprints.js';
import type { TxContext } from '../context.js';
import { allocationQueries } from '../queries.js';

// Whether a lease a pass passed over could use what a later try in the same pass got. The pass
// asks it of leases of other attributes than the try's (those of the same attributes could use
// it by definition): capacity that frees while a pass runs goes to the first lease tried after it
// frees, and greedy order says that a lease ahead which could use it gets it first.

/** What a grant took: the resource, its blueprint, and whether this transaction built it for the grant. */
export interface Taken {
  resource: Resource;
  /** Null when this process cannot serve from it (see bindBlueprint): nobody could use it then. */
  loaded: LoadedBlueprint | null;
  built: boolean;
  /** The same for two tries that took the same capacity (see InOrderTries.serve's probes). */
  key: string;
}

/**
 * What a grant to `lease` took, with its blueprint in the same statement. A resource built by
 * this transaction is its blueprint's room for a new one: a build in a try rolled back and built
 * again gets another id.
 */
export async function takenBy(ctx: TxContext, lease: Lease): Promise<Taken> {
  const { registry } = ctx.deps;
  const [row] = await ctx.tx.$queryRaw<
    { resource: Record<string, unknown>; built: boolean; blueprint: BlueprintColumn }[]
  >`
    SELECT to_jsonb(r) AS resource, r."createdAt" = ${ctx.now}::timestamp AS built,
           ${blueprintSql(registry, 'b')} AS blueprint
    FROM "Resource" r JOIN "Blueprint" b ON b.id = r."blueprintId" WHERE r.id = ${lease.resourceId}`;
  if (!row) throw new Error(`lease ${lease.id} holds resource ${lease.resourceId}, which is not there`);
  const resource = decodeResource(row.resource);
  const bound = blueprintFrom(registry, row.blueprint);
  // Left out as known, but another statement has bound a newer version since: read it again.
  const loaded = bound === undefined ? await loadBlueprint(ctx.tx, registry, resource.blueprintId) : bound;
  return {
    resource,
    loaded,
    built: row.built,
    key: row.built ? `new:${resource.blueprintId}` : `resource:${resource.id}`,
  };
}

/** A lease passed over, with the blueprints its own view let it use (null: not known, any). */
export interface Passed {
  lease: Lease;
  blueprintIds: readonly number[] | null;
}

/**
 * Whether `passed` could have been given what `taken` is, had that grant not been made: the
 * blueprint is one it may use, and the blueprint would build for it (a new resource: the room
 * to build is what was taken) or let it on the resource, counted without the grant. It errs
 * towards yes (a build's room is asked about as "ever", not "now"): a yes sends the lease ahead
 * back to be tried first, and its try is what decides.
 */
export async function couldUse(ctx: TxContext, passed: Passed, taken: Taken): Promise<boolean> {
  const { lease } = passed;
  const { resource } = taken;
  if (lease.resourceType !== resource.type) return false;
  if (lease.allowedBlueprintIds.length > 0 && !lease.allowedBlueprintIds.includes(resource.blueprintId)) return false;
  if (passed.blueprintIds && !passed.blueprintIds.includes(resource.blueprintId)) return false;
  if (!taken.loaded) return false;
  const { implementation, blueprint } = taken.loaded;
  if (implementation.canAnyBlueprintEverAllocate?.(lease) === false) return false;
  if (!implementation.canEverAllocate(blueprint, lease)) return false;
  if (taken.built) return true;
  const queries = allocationQueries(ctx.tx);
  const withoutGrant = {
    ...queries,
    liveLeaseCount: async (resourceId: number) =>
      (await queries.liveLeaseCount(resourceId)) - (resourceId === resource.id ? 1 : 0),
  };
  return implementation.canAcquireLeaseOn(blueprint, resource, lease, withoutGrant);
}
