import type { Blueprint, Lease, Resource } from '../generated/prisma/client.js';
import { WARM_LEASE_ID } from '../blueprints/implementation.js';
import { jobKey } from '../queue/jobs.js';
import type { JobClaim } from '../queue/port.js';
import { buildResource, takeBuildTurn } from './build-resource.js';
import { loadBlueprint, type LoadedBlueprint } from './blueprints.js';
import type { AllocatorDeps, TxContext } from './context.js';
import { inUpdateTransaction } from './transaction.js';
import { scheduleWarmPool } from './jobs.js';
import { writeLog } from './logs.js';
import { allocationQueries } from './queries.js';
import { unsavedLease } from './unsaved-lease.js';

// A blueprint's warm pool: `minReady` idle resources (ACTIVE, or PENDING on their way) kept ready,
// so that a lease on the blueprint is granted without waiting for a resource to open. The pool is
// one queue job per blueprint (WARM_POOL), so one process at a time fills it; it also takes the
// blueprint's allocation turn, so that it and the leases allocating there count what the other
// built. It runs when the option is set, at start-up, after a grant on the blueprint and after any
// transition of its resources. It builds as for a lease asking for the blueprint's warm attributes,
// with the same hooks, limit units and slot locks as a lease's build: the limit holds for both.

/** Warm builds that broke in a row before the pool waits (`warmPoolRetryMs`) instead of building. */
const BROKEN_IN_A_ROW = 3;

/** The lease a warm resource is built as if for: the blueprint's warm attributes, from no one. */
export function warmLease(blueprint: Pick<Blueprint, 'id' | 'resourceType' | 'warmAttributes'>, now: Date): Lease {
  return unsavedLease(
    {
      id: WARM_LEASE_ID,
      resourceType: blueprint.resourceType,
      attributes: blueprint.warmAttributes ?? {},
      ownerId: null,
      authorizingPrincipalId: null,
      allowedBlueprintIds: [blueprint.id],
    },
    now,
  );
}

/**
 * The blueprint's resources that are ready for a lease asking for its warm attributes: no live
 * lease, not draining, not asked to go; ACTIVE and able to take the lease, or PENDING and built
 * by the pool (a mystery box cannot say yet what it will be).
 */
export async function readyResources(ctx: TxContext, loaded: LoadedBlueprint, lease: Lease): Promise<Resource[]> {
  const { blueprint, implementation } = loaded;
  const idle = await ctx.tx.$queryRaw<Resource[]>`
    SELECT r.* FROM "Resource" r
    WHERE r."blueprintId" = ${blueprint.id} AND r.status IN ('PENDING', 'ACTIVE') AND r."drainingAt" IS NULL
      AND NOT EXISTS (SELECT 1 FROM "Lease" l WHERE l."resourceId" = r.id AND l.status IN ('ACQUIRED', 'ACTIVE'))
      AND NOT EXISTS (SELECT 1 FROM "Command" c WHERE c."targetResourceId" = r.id AND NOT c.consumed)
    ORDER BY r.id`;
  const queries = allocationQueries(ctx.tx);
  const ready: Resource[] = [];
  for (const resource of idle) {
    const warmBuilt = resource.status === 'PENDING' && resource.allocatedForLeaseId === null;
    if (warmBuilt || (await implementation.canAcquireLeaseOn(blueprint, resource, lease, queries)))
      ready.push(resource);
  }
  return ready;
}

/**
 * What a reclaim leaves the blueprint's warm pool. The answer, given the ids of the idle resources
 * a reclaim could ask to go (`idle`), is those of them it must not: with them, `minReady` of the
 * resources the pool counts as ready (`readyResources`, as its fill counts them, warm attributes
 * and all) stay, so that the pool has nothing to build again at once. Ready ones not in `idle`
 * (PENDING, in their grace period, or kept for the lease asking) count first; of `idle`, the
 * newest are kept, as a reclaim takes the oldest. Every reclaim asks this, the operator's and a
 * waiting lease's alike, under the blueprint's build turn, which the fill takes too: the count
 * and the reclaim's commands are not interleaved with a build or another reclaim.
 */
export async function warmPoolKeeps(
  ctx: TxContext,
  loaded: LoadedBlueprint,
): Promise<(idle: readonly number[]) => Set<number>> {
  const { minReady } = loaded.blueprint;
  if (minReady <= 0) return () => new Set();
  const ready = (await readyResources(ctx, loaded, warmLease(loaded.blueprint, ctx.now))).map((r) => r.id);
  return (idle) => {
    const asked = new Set(idle);
    const readyIdle = ready.filter((id) => asked.has(id));
    const keep = Math.min(readyIdle.length, Math.max(0, minReady - (ready.length - readyIdle.length)));
    return new Set(readyIdle.slice(readyIdle.length - keep));
  };
}

/** One look at the blueprint's warm pool: builds what is missing, within its limit. */
export async function fillWarmPool(deps: AllocatorDeps, blueprintId: number, claim?: JobClaim): Promise<void> {
  await inUpdateTransaction(
    deps,
    async (ctx) => {
      await takeBuildTurn(ctx, blueprintId);
      const loaded = await loadBlueprint(ctx.tx, deps.registry, blueprintId);
      if (!loaded || loaded.blueprint.disabled || loaded.blueprint.minReady <= 0) return;
      const failure = await fill(ctx, loaded);
      // What this look built counts already: the transitions it made need no second look.
      ctx.jobs.delete(jobKey('WARM_POOL', blueprintId));
      if (!failure) return;
      await writeLog(ctx, {
        type: 'warm-pool-failed',
        data: { message: failure.message, retryAt: failure.retryAt.toISOString() },
        blueprintId,
      });
      scheduleWarmPool(ctx, blueprintId, failure.retryAt);
    },
    claim,
  );
}

type Failure = { message: string; retryAt: Date } | null;

async function fill(ctx: TxContext, loaded: LoadedBlueprint): Promise<Failure> {
  const { blueprint, implementation } = loaded;
  const lease = warmLease(blueprint, ctx.now);
  const missing = blueprint.minReady - (await readyResources(ctx, loaded, lease)).length;
  if (missing <= 0) return null;
  const later = (message: string, from = ctx.now) => ({
    message,
    retryAt: new Date(from.getTime() + ctx.deps.options.warmPoolRetryMs),
  });
  const lastBroken = await brokeInARow(ctx, blueprint.id);
  if (lastBroken && ctx.now.getTime() < lastBroken.getTime() + ctx.deps.options.warmPoolRetryMs)
    return later(`the last ${BROKEN_IN_A_ROW} warm resources broke while opening`, lastBroken);
  const queries = allocationQueries(ctx.tx);
  for (let n = 0; n < missing; n++) {
    let canNow: boolean;
    try {
      canNow = await implementation.canAllocateNow(blueprint, lease, queries);
    } catch (error) {
      return later(messageOf(error));
    }
    // No capacity to build now: the next transition of its resources (or grant) looks again.
    if (!canNow) return null;
    const built = await buildResource(ctx, loaded, lease, null, allocationQueries(ctx.tx));
    // A change of the blueprint asks for a look of its own, which reads the new config.
    if (built.kind === 'no-capacity' || built.kind === 'blueprint-changed') return null;
    if (built.kind === 'conflict') return later('a slot lock of the new resource was held');
    if (built.kind === 'hook-failed') return later(messageOf(built.error));
  }
  return null;
}

/**
 * When the pool's last few builds all broke while opening, the newest one's creation: building
 * more at once would only buy broken resources. Null: they did not.
 */
async function brokeInARow(ctx: TxContext, blueprintId: number): Promise<Date | null> {
  const rows = await ctx.tx.$queryRaw<{ broken: boolean; createdAt: Date }[]>`
    SELECT "statusReason" = 'resource-broken' AND "activatedAt" IS NULL AS broken, "createdAt" FROM "Resource"
    WHERE "blueprintId" = ${blueprintId} AND "allocatedForLeaseId" IS NULL
    ORDER BY id DESC LIMIT ${BROKEN_IN_A_ROW}`;
  return rows.length === BROKEN_IN_A_ROW && rows.every((r) => r.broken) ? rows[0]!.createdAt : null;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** At start-up: every warm pool takes a look, in case its resources changed while no process ran. */
export async function bookWarmPools(deps: AllocatorDeps): Promise<void> {
  await inUpdateTransaction(deps, async (ctx) => {
    const rows = await ctx.tx.$queryRaw<{ id: number }[]>`
      SELECT id FROM "Blueprint" WHERE "minReady" > 0 AND NOT disabled ORDER BY id`;
    for (const { id } of rows) scheduleWarmPool(ctx, id);
  });
}
