import type { Lease, Resource, ResourceStatus } from '../generated/prisma/client.js';
import { scheduleLeaseUpdate } from '../queue/jobs.js';
import type { LoadedBlueprint } from './blueprints.js';
import type { TxContext } from './context.js';
import type { SlotLockHolder } from './logs.js';
import { acquireSlotLocks } from './slot-locks.js';
import { transitionLease } from './transitions.js';
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
  const rows = await ctx.tx.$queryRaw<
    { status: ResourceStatus }[]
  >`SELECT status::text FROM "Resource" WHERE id = ${resource.id} FOR SHARE`;
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
  if (activation?.status === 'active') {
    return {
      ok: true,
      shared,
      lease: await transitionLease(
        ctx,
        lease,
        'ACTIVE',
        { type: 'lease-activated', data: { resourceId: resource.id }, resourceId: resource.id },
        { resourceId: resource.id, ...clearedWait },
      ),
    };
  }
  if (activation?.status === 'wait') {
    scheduleLeaseUpdate(
      ctx,
      lease.id,
      new Date(ctx.now.getTime() + (activation.retryAfterMs ?? ctx.deps.options.activationPollMs)),
    );
  }
  return {
    ok: true,
    shared,
    lease: await transitionLease(
      ctx,
      lease,
      'ACQUIRED',
      { type: 'lease-acquired', data: { resourceId: resource.id }, resourceId: resource.id },
      { resourceId: resource.id, ...clearedWait },
    ),
  };
}
