import type { Lease } from '../generated/prisma/client.js';
import { scheduleLeaseUpdate } from '../queue/jobs.js';
import { allocateLease } from './allocate.js';
import { findResource, loadBlueprint } from './blueprints.js';
import { consumeCommands } from './commands.js';
import { inTransaction, type AllocatorDeps, type TxContext } from './context.js';
import { breakLease, destroyLease } from './lease-end.js';
import { releaseSlotLocks } from './slot-locks.js';
import { liveLeaseStatuses } from './state-machines.js';
import { transitionLease } from './transitions.js';
import { waitAndRetry } from './waiting.js';

/**
 * The single writer of a lease. Holds the lease row lock for the whole transaction, so no other
 * process can write it at the same time; consumes its commands in order, then acts on its status.
 */
export async function updateLease(deps: AllocatorDeps, leaseId: number): Promise<void> {
  await inTransaction(deps, async (ctx) => {
    // NO KEY UPDATE, not UPDATE: rows that merely reference the lease (commands, logs, slot locks)
    // can still be inserted by others meanwhile, which rules out lock cycles with resource updates.
    const [locked] = await ctx.tx.$queryRaw<Lease[]>`SELECT * FROM "Lease" WHERE id = ${leaseId} FOR NO KEY UPDATE`;
    if (!locked || locked.status === 'DESTROYED') return;
    let lease = locked;

    for (const command of await consumeCommands(ctx, { leaseId })) {
      if (command.kind === 'RELEASE' && liveLeaseStatuses.includes(lease.status)) {
        lease = await transitionLease(ctx, lease, 'RELEASED', { type: 'lease-released', data: { reason: 'command' } });
      }
    }
    if (liveLeaseStatuses.includes(lease.status) && lease.until && lease.until <= ctx.now) {
      lease = await transitionLease(ctx, lease, 'RELEASED', { type: 'lease-released', data: { reason: 'expired' } });
    }

    lease = await step(ctx, lease);

    // The expiry job: a delayed update at `until`, so that expiry needs no polling.
    if (liveLeaseStatuses.includes(lease.status) && lease.until) scheduleLeaseUpdate(ctx, lease.id, lease.until);
  });
}

async function step(ctx: TxContext, lease: Lease): Promise<Lease> {
  switch (lease.status) {
    case 'PENDING':
      return allocateLease(ctx, lease);
    case 'ACQUIRED':
      return progressAcquired(ctx, lease);
    case 'ACTIVE':
      return checkActive(ctx, lease);
    case 'RELEASED':
    case 'BROKEN':
      return destroyLease(ctx, lease);
    case 'DESTROYED':
      return lease;
  }
}

const wasBroken = (resource: { status: string; statusReason: string | null }) =>
  resource.status === 'BROKEN' || (resource.status === 'DESTROYED' && resource.statusReason === 'resource-broken');

/** ACQUIRED: activate once the resource is open; reacquire if the resource went away first. */
async function progressAcquired(ctx: TxContext, lease: Lease): Promise<Lease> {
  const resource = lease.resourceId === null ? null : await findResource(ctx.tx, lease.resourceId);
  if (!resource || (resource.status !== 'PENDING' && resource.status !== 'ACTIVE')) {
    await releaseSlotLocks(ctx.tx, { leaseId: lease.id });
    const pending = await transitionLease(
      ctx,
      lease,
      'PENDING',
      {
        type: 'lease-reacquiring',
        data: { resourceId: lease.resourceId ?? 0, resourceStatus: resource?.status ?? 'missing' },
      },
      { resourceId: null, acquiredAt: null },
    );
    scheduleLeaseUpdate(ctx, lease.id);
    return pending;
  }
  if (resource.status === 'PENDING')
    return waitAndRetry(ctx, lease, { reason: 'waiting-for-resource-activation', resourceId: resource.id });
  const loaded = await loadBlueprint(ctx.tx, ctx.deps.registry, resource.blueprintId);
  const activation = loaded?.implementation.activateLease?.(loaded.blueprint, resource, lease) ?? {
    status: 'active' as const,
  };
  if (activation.status === 'wait') {
    scheduleLeaseUpdate(
      ctx,
      lease.id,
      new Date(ctx.now.getTime() + (activation.retryAfterMs ?? ctx.deps.options.activationPollMs)),
    );
    return lease;
  }
  return transitionLease(
    ctx,
    lease,
    'ACTIVE',
    { type: 'lease-activated', data: { resourceId: resource.id } },
    { attempts: 0 },
  );
}

/**
 * ACTIVE: a lease whose resource broke is broken too (Drydock leaves it active); one whose
 * resource went away without breaking is released.
 */
async function checkActive(ctx: TxContext, lease: Lease): Promise<Lease> {
  if (lease.resourceId === null) return lease;
  const resource = await findResource(ctx.tx, lease.resourceId);
  if (!resource) return lease;
  if (wasBroken(resource)) {
    // The owner's subscription shows this log: say what broke the resource, not only that it did.
    const [why] = await ctx.tx.$queryRaw<{ message: string | null }[]>`
      SELECT data->>'message' AS message FROM "Log"
      WHERE "resourceId" = ${resource.id} AND type = 'resource-broken' ORDER BY id DESC LIMIT 1`;
    const message = `resource ${resource.id} broke${why?.message ? `: ${why.message}` : ''}`;
    return breakLease(ctx, lease, 'resource-broken', message);
  }
  if (resource.status === 'RELEASED' || resource.status === 'DESTROYED') {
    const released = await transitionLease(ctx, lease, 'RELEASED', {
      type: 'lease-released',
      data: { reason: 'resource-released' },
    });
    return destroyLease(ctx, released);
  }
  return lease;
}
