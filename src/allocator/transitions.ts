import type { Lease, LeaseStatus, Prisma, Resource, ResourceStatus } from '../generated/prisma/client.js';
import type { TxContext } from './context.js';
import { writeLog, type LogEntry, type LogType } from './logs.js';
import { assertLeaseTransition, assertResourceTransition } from './state-machines.js';

// The only functions that write a status. Each validates the move against the state machine,
// writes the row and a log in the caller's transaction, and queues the event for after commit.

const leaseTimestamps: Partial<Record<LeaseStatus, keyof Lease>> = {
  ACQUIRED: 'acquiredAt',
  ACTIVE: 'activatedAt',
  RELEASED: 'releasedAt',
  DESTROYED: 'destroyedAt',
};

const resourceTimestamps: Partial<Record<ResourceStatus, keyof Resource>> = {
  ACTIVE: 'activatedAt',
  RELEASED: 'releasedAt',
  DESTROYED: 'destroyedAt',
};

export async function transitionLease<T extends LogType>(
  ctx: TxContext,
  lease: Lease,
  to: LeaseStatus,
  log: Omit<LogEntry<T>, 'leaseId'>,
  extra: Prisma.LeaseUncheckedUpdateInput = {},
): Promise<Lease> {
  assertLeaseTransition(lease.id, lease.status, to);
  const stamp = leaseTimestamps[to];
  // PENDING → ACTIVE skips ACQUIRED: it was acquired in the same step.
  const acquiredNow = to === 'ACTIVE' && lease.status === 'PENDING' ? { acquiredAt: ctx.now } : {};
  const updated = await ctx.tx.lease.update({
    where: { id: lease.id },
    data: {
      status: to,
      ...(stamp ? { [stamp]: ctx.now } : {}),
      ...acquiredNow,
      ...(to === 'BROKEN' || to === 'RELEASED' ? { statusReason: log.type } : {}),
      ...extra,
    },
  });
  await writeLog(ctx, { ...log, leaseId: lease.id, resourceId: log.resourceId ?? updated.resourceId } as LogEntry<T>, {
    lease: to,
  });
  return updated;
}

export async function transitionResource<T extends LogType>(
  ctx: TxContext,
  resource: Resource,
  to: ResourceStatus,
  log: Omit<LogEntry<T>, 'resourceId' | 'blueprintId'>,
  extra: Prisma.ResourceUncheckedUpdateInput = {},
): Promise<Resource> {
  assertResourceTransition(resource.id, resource.status, to);
  const stamp = resourceTimestamps[to];
  const updated = await ctx.tx.resource.update({
    where: { id: resource.id },
    data: {
      status: to,
      ...(stamp ? { [stamp]: ctx.now } : {}),
      ...(to === 'BROKEN' || to === 'RELEASED' ? { statusReason: log.type } : {}),
      ...extra,
    },
  });
  await writeLog(ctx, { ...log, resourceId: resource.id, blueprintId: resource.blueprintId } as LogEntry<T>, {
    resource: to,
  });
  return updated;
}

/** A log about a lease that does not change its status (waiting, slot lock failure, ...). */
export function logLease<T extends LogType>(ctx: TxContext, lease: Lease, log: Omit<LogEntry<T>, 'leaseId'>) {
  return writeLog(ctx, { ...log, leaseId: lease.id } as LogEntry<T>, { lease: lease.status });
}

export function logResource<T extends LogType>(
  ctx: TxContext,
  resource: Resource,
  log: Omit<LogEntry<T>, 'resourceId' | 'blueprintId'>,
) {
  return writeLog(ctx, { ...log, resourceId: resource.id, blueprintId: resource.blueprintId } as LogEntry<T>, {
    resource: resource.status,
  });
}
