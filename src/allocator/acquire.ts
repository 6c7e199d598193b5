import type { Lease, Resource, ResourceStatus } from '../generated/prisma/client.js';
import { scheduleLeaseUpdate, scheduleWarmPool } from './jobs.js';
import type { LoadedBlueprint } from './blueprints.js';
import type { TxContext } from './context.js';
import type { SlotLockHolder } from './logs.js';
import { acquireSlotLocks } from './slot-locks.js';
import { guardedTransitionLease, transitionLease } from './transitions.js';
import { clearedWait } from './waiting.js';

export type AcquireOutcome =
  /** `shared`: the acquisition took no lease slot lock, so the resource may take more leases. */
  | { ok: true; lease: Lease; shared: boolean }
  | { ok: false; reason: 'resource-not-open' }
  | { ok: false; reason: 'slot-lock'; holders: SlotLockHolder[] };

/**
 * Acquires `lease` on `resource`: takes the lease's slot locks, then ACTIVE at once if the
 * resource is open ("activate immediately"), else ACQUIRED until the resource activates.
 *
 * The resource row is share-locked: the resource's own update takes it exclusively, so a lease
 * can never land on a resource whose release is being committed at the same moment.
 */
export async function acquireOn(
  ctx: TxContext,
  lease: Lease,
  resource: Resource,
  loaded: LoadedBlueprint,
): Promise<AcquireOutcome> {
  // A grant may take a warm resource: the pool looks whether to build another (after commit).
  if (loaded.blueprint.minReady > 0) scheduleWarmPool(ctx, loaded.blueprint.id);
  const open = resource.status === 'ACTIVE' ? await acquireOnOpen(ctx, lease, resource, loaded) : null;
  if (open) return open;
  const rows = await ctx.tx.$queryRaw<
    { status: ResourceStatus }[]
  >`SELECT CASE WHEN "drainingAt" IS NULL THEN status::text ELSE 'DRAINING' END AS status FROM "Resource" WHERE id = ${resource.id} FOR SHARE`;
  const status = rows[0]?.status;
  if (status !== 'ACTIVE' && status !== 'PENDING') return { ok: false, reason: 'resource-not-open' };
  const current = status === resource.status ? resource : { ...resource, status };
  const plan = loaded.implementation.acquireLease(loaded.blueprint, current, lease);
  if (!Array.isArray(plan.slotLocks))
    throw new Error(`blueprint ${loaded.blueprint.id} returned an acquire plan without slotLocks`);
  const locks = await acquireSlotLocks(ctx.tx, { leaseId: lease.id }, plan.slotLocks);
  if (!locks.ok) return { ok: false, reason: 'slot-lock', holders: locks.holders };
  const activation =
    status === 'ACTIVE'
      ? (loaded.implementation.activateLease?.(loaded.blueprint, current, lease) ?? { status: 'active' as const })
      : null;
  const shared = plan.slotLocks.length === 0;
  // A lease with a setup step (a checkout) is ACQUIRED first; its own update runs the setup.
  const needsSetup = loaded.implementation.setupLease !== undefined;
  if (activation?.status === 'active' && needsSetup) scheduleLeaseUpdate(ctx, lease.id);
  if (activation?.status === 'wait') {
    scheduleLeaseUpdate(
      ctx,
      lease.id,
      new Date(ctx.now.getTime() + (activation.retryAfterMs ?? ctx.deps.options.activationPollMs)),
    );
  }
  const activeNow = activation?.status === 'active' && !needsSetup;
  return {
    ok: true,
    shared,
    lease: await transitionLease(
      ctx,
      lease,
      'ACQUIRED',
      { type: 'lease-acquired', data: { resourceId: resource.id }, resourceId: resource.id },
      { resourceId: resource.id, ...clearedWait },
      activeNow
        ? {
            then: {
              to: 'ACTIVE',
              log: { type: 'lease-activated', data: { resourceId: resource.id }, resourceId: resource.id },
            },
          }
        : {},
    ),
  };
}

/**
 * The common case as one statement: a resource that was ACTIVE when read, a blueprint that takes
 * no slot lock for the lease and activates it at once. The share lock, the lease's ACTIVE row and
 * its two logs are one statement, written only if the resource is still ACTIVE under the lock.
 * Null: not that case, or the resource moved on; the general path looks again.
 */
async function acquireOnOpen(
  ctx: TxContext,
  lease: Lease,
  resource: Resource,
  loaded: LoadedBlueprint,
): Promise<AcquireOutcome | null> {
  const { blueprint, implementation } = loaded;
  if (implementation.setupLease !== undefined) return null;
  const plan = implementation.acquireLease(blueprint, resource, lease);
  if (!Array.isArray(plan.slotLocks) || plan.slotLocks.length > 0) return null;
  const activation = implementation.activateLease?.(blueprint, resource, lease) ?? { status: 'active' as const };
  if (activation.status !== 'active') return null;
  if (ctx.grants) return { ok: true, shared: true, lease: ctx.grants.plan(ctx, lease, resource.id) };
  // Acquired, then activated, both logged (as Drydock logs them), in one row write.
  const { lease: active } = await guardedTransitionLease(
    ctx,
    lease,
    'ACQUIRED',
    { type: 'lease-acquired', data: { resourceId: resource.id }, resourceId: resource.id },
    { resourceId: resource.id, ...clearedWait },
    {
      onActiveResource: resource.id,
      then: {
        to: 'ACTIVE',
        log: { type: 'lease-activated', data: { resourceId: resource.id }, resourceId: resource.id },
      },
    },
  );
  return active ? { ok: true, shared: true, lease: active } : null;
}
