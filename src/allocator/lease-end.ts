import type { Lease } from '../generated/prisma/client.js';
import { findResource, loadBlueprint } from './blueprints.js';
import type { TxContext } from './context.js';
import { releaseSlotLocks } from './slot-locks.js';
import { transitionLease } from './transitions.js';
import { wakeWaitingLeases } from './wake.js';

/** A permanent failure: BROKEN with the reason logged, then destroyed in the same update. */
export async function breakLease(ctx: TxContext, lease: Lease, reason: string, message: string): Promise<Lease> {
  const broken = await transitionLease(
    ctx,
    lease,
    'BROKEN',
    { type: 'lease-broken', data: { reason, message } },
    { statusReason: reason },
  );
  return destroyLease(ctx, broken);
}

/**
 * RELEASED or BROKEN → DESTROYED: the blueprint's release and destroy hooks, then the lease's
 * slot locks go and the leases waiting for this capacity are woken. Hook failures are logged in
 * the job's error, not allowed to keep a dead lease holding its locks.
 */
export async function destroyLease(ctx: TxContext, lease: Lease): Promise<Lease> {
  if (lease.resourceId !== null) {
    const resource = await findResource(ctx.tx, lease.resourceId);
    const loaded = resource ? await loadBlueprint(ctx.tx, ctx.deps.registry, resource.blueprintId) : null;
    if (resource && loaded) {
      const { blueprint, implementation } = loaded;
      if (lease.status === 'RELEASED') await implementation.didReleaseLease?.(blueprint, resource, lease);
      await implementation.destroyLease?.(blueprint, resource, lease);
    }
  }
  await releaseSlotLocks(ctx.tx, { leaseId: lease.id });
  const destroyed = await transitionLease(ctx, lease, 'DESTROYED', { type: 'lease-destroyed', data: {} });
  // One unit of capacity freed at most: one waiter, the oldest, gets it (see wake.ts).
  if (lease.resourceId !== null) await wakeWaitingLeases(ctx, lease.resourceType, 1);
  return destroyed;
}
