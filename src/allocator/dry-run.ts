import type { Blueprint, Lease, Prisma, Resource } from '../generated/prisma/client.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import { bindBlueprint, cannotEverAllocate } from './blueprints.js';
import { limitLeavesRoom } from './build-resource.js';
import { drainingReason } from './drain.js';
import { allocationQueries } from './queries.js';
import { quotaBlocker } from './scheduler/quota.js';
import { readOwner } from './scheduler/read.js';
import { heldKeys, slotLockHolders } from './slot-locks.js';
import type { Blocker } from './waiting.js';

// "Would this request be served, and by what?" — the allocator's first steps run read-only on an
// unsaved lease, with a reason for everything that would not serve it. Nothing is written. Each
// rule is the one the scheduler applies (the same functions), so that the dry run cannot promise
// what the scheduling pass would make the lease wait for.

export interface ResourceVerdict {
  resource: Resource;
  /** null when the lease could be acquired on it now. */
  reason: string | null;
  holders: { key: string; leaseId: number | null; resourceId: number | null }[];
}

export interface BlueprintVerdict {
  blueprint: Blueprint;
  /** null when the blueprint is a candidate. */
  reason: string | null;
  /** For candidates: whether it could build a new resource for the lease right now. */
  canAllocateNow: boolean | null;
  /** For candidates that could not build one now: why (its resource limit, its implementation). */
  cannotAllocateNowReason: string | null;
  resources: ResourceVerdict[];
}

export interface DryRun {
  /**
   * What the scheduling pass would make the lease wait for before it looks at any candidate (its
   * owner at its quota of the type), as the lease's blocker would record it; null: nothing.
   */
  blocker: Blocker | null;
  blueprints: BlueprintVerdict[];
}

export async function explainCandidates(
  tx: Prisma.TransactionClient,
  registry: BlueprintRegistry,
  lease: Lease,
  options: { bypassAuthorizations: boolean },
): Promise<DryRun> {
  const owner = lease.ownerId === null ? undefined : await readOwner(tx, lease.resourceType, lease.ownerId);
  const blocker = owner ? quotaBlocker(owner.quota, owner.live, 1) : null;
  return { blocker, blueprints: await explainBlueprints(tx, registry, lease, options) };
}

async function explainBlueprints(
  tx: Prisma.TransactionClient,
  registry: BlueprintRegistry,
  lease: Lease,
  options: { bypassAuthorizations: boolean },
): Promise<BlueprintVerdict[]> {
  const blueprints = await tx.blueprint.findMany({
    where: {
      OR: [
        { resourceType: lease.resourceType },
        ...(lease.allowedBlueprintIds.length > 0 ? [{ id: { in: lease.allowedBlueprintIds } }] : []),
      ],
    },
    orderBy: { id: 'asc' },
  });
  const granted = new Set(
    options.bypassAuthorizations || lease.authorizingPrincipalId === null
      ? []
      : (
          await tx.authorization.findMany({
            where: {
              principalId: lease.authorizingPrincipalId,
              blueprintState: 'AUTHORIZED',
              objectState: 'ACTIVE',
            },
            select: { blueprintId: true },
          })
        ).map((row) => row.blueprintId),
  );
  const queries = allocationQueries(tx);
  const verdicts: BlueprintVerdict[] = [];
  for (const blueprint of blueprints) {
    const verdict = (
      reason: string | null,
      build: { canAllocateNow: boolean; cannotAllocateNowReason: string | null } | null = null,
      resources: ResourceVerdict[] = [],
    ) =>
      verdicts.push({
        blueprint,
        reason,
        canAllocateNow: build?.canAllocateNow ?? null,
        cannotAllocateNowReason: build?.cannotAllocateNowReason ?? null,
        resources,
      });
    if (blueprint.resourceType !== lease.resourceType) {
      verdict(`yields "${blueprint.resourceType}", not "${lease.resourceType}"`);
      continue;
    }
    if (lease.allowedBlueprintIds.length > 0 && !lease.allowedBlueprintIds.includes(blueprint.id)) {
      verdict('not among the blueprints the request allows');
      continue;
    }
    if (blueprint.disabled) {
      verdict('disabled');
      continue;
    }
    const loaded = bindBlueprint(registry, blueprint);
    if (!loaded) {
      verdict(`implementation "${blueprint.implementation}" is unknown here or its config no longer validates`);
      continue;
    }
    if (!(loaded.implementation.canAnyBlueprintEverAllocate?.(lease) ?? true)) {
      verdict(`no ${blueprint.implementation} blueprint can serve this request`);
      continue;
    }
    if (!options.bypassAuthorizations && !granted.has(blueprint.id)) {
      verdict('not authorized for you: request an authorization on this blueprint');
      continue;
    }
    if (!loaded.implementation.canEverAllocate(loaded.blueprint, lease)) {
      verdict(cannotEverAllocate(loaded, lease));
      continue;
    }
    const resources: ResourceVerdict[] = [];
    for (const resource of await queries.resources(blueprint.id, ['ACTIVE'])) {
      if (resource.type !== lease.resourceType) continue;
      const draining = drainingReason(resource);
      if (draining !== null) {
        resources.push({ resource, reason: draining, holders: [] });
        continue;
      }
      if (!(await loaded.implementation.canAcquireLeaseOn(loaded.blueprint, resource, lease, queries))) {
        resources.push({ resource, reason: 'does not accept this lease (attributes or capacity)', holders: [] });
        continue;
      }
      const keys = loaded.implementation.acquireLease(loaded.blueprint, resource, lease).slotLocks;
      const held = keys.length > 0 ? await heldKeys(tx, keys) : new Set<string>();
      if (held.size > 0) {
        resources.push({ resource, reason: 'a slot it needs is held', holders: await slotLockHolders(tx, [...held]) });
        continue;
      }
      resources.push({ resource, reason: null, holders: [] });
    }
    // In the order a build checks: the implementation first, then a unit of the limit.
    const build = !(await loaded.implementation.canAllocateNow(loaded.blueprint, lease, queries))
      ? 'its implementation cannot build another resource for this lease now'
      : !(await limitLeavesRoom(tx, blueprint, lease, queries))
        ? `at its resource limit of ${blueprint.resourceLimit} live resources`
        : null;
    verdict(null, { canAllocateNow: build === null, cannotAllocateNowReason: build }, resources);
  }
  return verdicts;
}
