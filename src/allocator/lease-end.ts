import { Prisma, type Lease, type Resource } from '../generated/prisma/client.js';
import { findResourceWithBlueprint, type LoadedBlueprint } from './blueprints.js';
import type { TxContext } from './context.js';
import { transitionLease } from './transitions.js';

/** The resource a lease is on and its blueprint, read (not locked) with the lease's lock. */
export interface HeldResource {
  resource: Resource;
  loaded: LoadedBlueprint | null;
}

/** A permanent failure: BROKEN with the reason logged, then destroyed in the same update. */
export async function breakLease(
  ctx: TxContext,
  lease: Lease,
  reason: string,
  message: string,
  held?: HeldResource | null,
  /** The blueprints the verdict is about (e.g. those it is not authorized on), for whoever acts on it. */
  blueprintIds?: number[],
): Promise<Lease> {
  const broken = await transitionLease(
    ctx,
    lease,
    'BROKEN',
    { type: 'lease-broken', data: { reason, message, ...(blueprintIds?.length ? { blueprintIds } : {}) } },
    { statusReason: reason },
  );
  return destroyLease(ctx, broken, held);
}

/**
 * RELEASED or BROKEN → DESTROYED: the blueprint's release and destroy hooks, then the lease's
 * slot locks go and the type's scheduling pass is asked for. Hook failures are logged in
 * the job's error, not allowed to keep a dead lease holding its locks.
 *
 * `held`: the lease's resource and blueprint if the caller has them already (read with the lease's
 * lock); otherwise they are read here.
 */
export async function destroyLease(ctx: TxContext, lease: Lease, held?: HeldResource | null): Promise<Lease> {
  if (lease.resourceId !== null) {
    const found =
      held && held.resource.id === lease.resourceId
        ? held
        : await findResourceWithBlueprint(ctx.tx, ctx.deps.registry, lease.resourceId);
    if (found?.loaded) {
      const { resource, loaded } = found;
      const { blueprint, implementation } = loaded;
      if (lease.status === 'RELEASED') await implementation.didReleaseLease?.(blueprint, resource, lease);
      await implementation.destroyLease?.(blueprint, resource, lease);
    }
  }
  // The slot locks go in the statement of the transition, and the type's pass looks again.
  return transitionLease(
    ctx,
    lease,
    'DESTROYED',
    { type: 'lease-destroyed', data: {} },
    {},
    { releaseSlotLocks: true, wake: lease.resourceId !== null },
  );
}

/**
 * A live lease released by command or expiry: RELEASED and, in the same update, DESTROYED. When
 * the blueprint has no hook to run in between (didReleaseLease, destroyLease), both transitions
 * are one row write with both logs, in one statement with the slot locks and the wake-up.
 */
export async function releaseLease(
  ctx: TxContext,
  lease: Lease,
  reason: 'command' | 'expired' | 'gang-part-lost' | 'holder-lost' | 'resource-released',
  held: HeldResource | null,
): Promise<Lease> {
  const log = { type: 'lease-released' as const, data: { reason } };
  // The row says why as the log does: a client reading the lease alone can tell an expiry from a
  // release it asked for without reading the log.
  const changes = { statusReason: reason };
  const on = lease.resourceId === null ? null : held?.resource.id === lease.resourceId ? held : undefined;
  const hooks = on?.loaded?.implementation;
  if (on === undefined || hooks?.didReleaseLease || hooks?.destroyLease) {
    return destroyLease(ctx, await transitionLease(ctx, lease, 'RELEASED', log, changes), held);
  }
  return transitionLease(ctx, lease, 'RELEASED', log, changes, {
    then: { to: 'DESTROYED', log: { type: 'lease-destroyed', data: {} } },
    releaseSlotLocks: true,
    wake: lease.resourceId !== null,
  });
}

/** The owner's subscription shows this: say what broke the resource, not only that it did. */
export async function brokenMessage(ctx: TxContext, resourceId: number, resourcesBroken = 1): Promise<string> {
  const [why] = await ctx.tx.$queryRaw<{ message: string | null }[]>`
    SELECT data->>'message' AS message FROM "Log"
    WHERE "resourceId" = ${resourceId} AND type = 'resource-broken' ORDER BY id DESC LIMIT 1`;
  const prefix =
    resourcesBroken > 1
      ? `${resourcesBroken} resources broke; the last, ${resourceId}`
      : `resource ${resourceId} broke`;
  return `${prefix}${why?.message ? `: ${why.message}` : ''}`;
}

/** Over a lease's broken builds `r`: how many, the newest, and whether one broke hopelessly. */
export const brokenBuildsColumns = Prisma.sql`count(*)::int AS count, max(r.id) AS last,
  COALESCE(bool_or(EXISTS (SELECT 1 FROM "Log" l WHERE l."resourceId" = r.id AND l.type = 'resource-broken'
    AND l.data ? 'hopeless')), false) AS hopeless`;

/**
 * A blueprint whose every resource breaks while opening (a provisioner that always fails) would
 * otherwise build resources for one lease forever: after `maxBrokenResourcesPerLease` of its
 * resources broke, the lease breaks with the last one's reason. A resource that broke hopelessly
 * (the blueprint said no other resource could do better) breaks the lease at once.
 * `counted`: the count, if the caller has read it already (the allocation view).
 */
export async function giveUpAfterBrokenBuilds(
  ctx: TxContext,
  lease: Lease,
  counted?: { count: number; last: number | null; hopeless: boolean },
): Promise<Lease | null> {
  const [row] = counted
    ? [counted]
    : await ctx.tx.$queryRaw<{ count: number; last: number | null; hopeless: boolean }[]>`
        SELECT ${brokenBuildsColumns} FROM "Resource" r
        WHERE "allocatedForLeaseId" = ${lease.id} AND "statusReason" = 'resource-broken'`;
  if (!row || row.last === null) return null;
  if (!row.hopeless && row.count < ctx.deps.options.maxBrokenResourcesPerLease) return null;
  return breakLease(ctx, lease, 'resource-broken', await brokenMessage(ctx, row.last, row.count));
}
