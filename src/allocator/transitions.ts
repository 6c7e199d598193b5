import {
  Prisma,
  type Lease,
  type LeaseStatus,
  type Resource,
  type ResourceStatus,
} from '../generated/prisma/client.js';
import type { TxContext } from './context.js';
import { writeLog, type LogEntry, type LogType } from './logs.js';
import { assertLeaseTransition, assertResourceTransition } from './state-machines.js';

// The only functions that write a status. Each validates the move against the state machine,
// writes the row and a log in the caller's transaction, and queues the event for after commit.

const leaseTimestamps: Partial<Record<LeaseStatus, string>> = {
  ACQUIRED: 'acquiredAt',
  ACTIVE: 'activatedAt',
  RELEASED: 'releasedAt',
  DESTROYED: 'destroyedAt',
};

const resourceTimestamps: Partial<Record<ResourceStatus, string>> = {
  ACTIVE: 'activatedAt',
  RELEASED: 'releasedAt',
  DESTROYED: 'destroyedAt',
};

/** What a lease transition may change besides its status and timestamps. */
export interface LeaseChanges {
  resourceId?: number | null;
  acquiredAt?: Date | null;
  attempts?: number;
  /** Only ever cleared here; waiting.ts writes it. */
  blocker?: null;
  statusReason?: string;
}

/** What a resource transition may change besides its status and timestamps. */
export interface ResourceChanges {
  attributes?: Record<string, unknown>;
}

type Assignment = readonly [column: string, value: Prisma.Sql];

// Raw SQL, not the client's update: that costs a second round trip to read the row back, and
// transitions are most of what an allocator does. Column names come only from the lists above.
function setClause(assignments: Assignment[]): Prisma.Sql {
  return Prisma.join(
    assignments.map(([column, value]) => Prisma.sql`${Prisma.raw(`"${column}"`)} = ${value}`),
    ', ',
  );
}

const timestamp = (date: Date | null) => Prisma.sql`${date}::timestamp`;

export async function transitionLease<T extends LogType>(
  ctx: TxContext,
  lease: Lease,
  to: LeaseStatus,
  log: Omit<LogEntry<T>, 'leaseId'>,
  extra: LeaseChanges = {},
): Promise<Lease> {
  assertLeaseTransition(lease.id, lease.status, to);
  const set: Assignment[] = [
    ['status', Prisma.sql`${to}::"LeaseStatus"`],
    ['updatedAt', timestamp(ctx.now)],
  ];
  const stamp = leaseTimestamps[to];
  if (stamp) set.push([stamp, timestamp(ctx.now)]);
  // PENDING → ACTIVE skips ACQUIRED: it was acquired in the same step.
  if (to === 'ACTIVE' && lease.status === 'PENDING') set.push(['acquiredAt', timestamp(ctx.now)]);
  const reason = extra.statusReason ?? (to === 'BROKEN' || to === 'RELEASED' ? log.type : undefined);
  if (reason !== undefined) set.push(['statusReason', Prisma.sql`${reason}`]);
  if (extra.resourceId !== undefined) set.push(['resourceId', Prisma.sql`${extra.resourceId}::int`]);
  if (extra.acquiredAt !== undefined) set.push(['acquiredAt', timestamp(extra.acquiredAt)]);
  if (extra.attempts !== undefined) set.push(['attempts', Prisma.sql`${extra.attempts}::int`]);
  if (extra.blocker !== undefined) set.push(['blocker', Prisma.sql`NULL`]);
  const [updated] = await ctx.tx.$queryRaw<Lease[]>`
    UPDATE "Lease" SET ${setClause(set)} WHERE id = ${lease.id} RETURNING *`;
  if (!updated) throw new Error(`lease ${lease.id} vanished during its own update`);
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
  extra: ResourceChanges = {},
): Promise<Resource> {
  assertResourceTransition(resource.id, resource.status, to);
  const set: Assignment[] = [
    ['status', Prisma.sql`${to}::"ResourceStatus"`],
    ['updatedAt', timestamp(ctx.now)],
  ];
  const stamp = resourceTimestamps[to];
  if (stamp) set.push([stamp, timestamp(ctx.now)]);
  if (to === 'BROKEN' || to === 'RELEASED') set.push(['statusReason', Prisma.sql`${log.type}`]);
  if (extra.attributes !== undefined) set.push(['attributes', Prisma.sql`${JSON.stringify(extra.attributes)}::jsonb`]);
  const [updated] = await ctx.tx.$queryRaw<Resource[]>`
    UPDATE "Resource" SET ${setClause(set)} WHERE id = ${resource.id} RETURNING *`;
  if (!updated) throw new Error(`resource ${resource.id} vanished during its own update`);
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
