import {
  Prisma,
  type Lease,
  type LeaseStatus,
  type Resource,
  type ResourceStatus,
} from '../generated/prisma/client.js';
import { schedulePass, scheduleResourceUpdate, scheduleWarmPool } from './jobs.js';
import type { TxContext } from './context.js';
import { publishLog, writeLog, type LogEntry, type LogType } from './logs.js';
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

/** Work that may ride along in a lease transition's statement instead of one of its own. */
export interface LeaseTransitionExtras {
  /** Delete the lease's slot locks (it is being destroyed). */
  releaseSlotLocks?: boolean;
  /** Capacity frees: ask for a scheduling pass of the lease's resource type. */
  wake?: boolean;
  /**
   * Only if the resource, share-locked by the same statement, is ACTIVE: the acquisition of a
   * lease on an open resource in one statement (acquire.ts). Otherwise nothing is written and the
   * result says what the resource is.
   */
  onActiveResource?: number;
  /**
   * A second transition right after the first (RELEASED, then DESTROYED): both are validated and
   * logged, in order, and the row is written once, in its final state.
   */
  then?: { to: LeaseStatus; log: Omit<LogEntry, 'leaseId'> };
}

export type GuardedTransition = { lease: Lease | null; resourceStatus: ResourceStatus | null };

export async function transitionLease<T extends LogType>(
  ctx: TxContext,
  lease: Lease,
  to: LeaseStatus,
  log: Omit<LogEntry<T>, 'leaseId'>,
  extra: LeaseChanges = {},
  extras: Omit<LeaseTransitionExtras, 'onActiveResource'> = {},
): Promise<Lease> {
  const { lease: updated } = await guardedTransitionLease(ctx, lease, to, log, extra, extras);
  if (!updated) throw new Error(`lease ${lease.id} vanished during its own update`);
  return updated;
}

function leaseAssignments(ctx: TxContext, from: LeaseStatus, to: LeaseStatus, logType: string, extra: LeaseChanges) {
  const set = new Map<string, Prisma.Sql>([
    ['status', Prisma.sql`${to}::"LeaseStatus"`],
    ['updatedAt', timestamp(ctx.now)],
  ]);
  const stamp = leaseTimestamps[to];
  if (stamp) set.set(stamp, timestamp(ctx.now));
  // PENDING → ACTIVE skips ACQUIRED: it was acquired in the same step.
  if (to === 'ACTIVE' && from === 'PENDING') set.set('acquiredAt', timestamp(ctx.now));
  const reason = extra.statusReason ?? (to === 'BROKEN' || to === 'RELEASED' ? logType : undefined);
  if (reason !== undefined) set.set('statusReason', Prisma.sql`${reason}`);
  if (extra.resourceId !== undefined) set.set('resourceId', Prisma.sql`${extra.resourceId}::int`);
  if (extra.acquiredAt !== undefined) set.set('acquiredAt', timestamp(extra.acquiredAt));
  if (extra.attempts !== undefined) set.set('attempts', Prisma.sql`${extra.attempts}::int`);
  if (extra.blocker !== undefined) set.set('blocker', Prisma.sql`NULL`);
  return set;
}

/**
 * The lease's row, its log and whatever `extras` asks for, in one statement: a transition is most
 * of what an update does, and each round trip it saves is saved on nearly every update. Raw SQL,
 * not the client's update, which would cost a second round trip to read the row back. Column names
 * come only from the lists above.
 */
export async function guardedTransitionLease<T extends LogType>(
  ctx: TxContext,
  lease: Lease,
  to: LeaseStatus,
  log: Omit<LogEntry<T>, 'leaseId'>,
  extra: LeaseChanges = {},
  extras: LeaseTransitionExtras = {},
): Promise<GuardedTransition> {
  assertLeaseTransition(lease.id, lease.status, to);
  const set = leaseAssignments(ctx, lease.status, to, log.type, extra);
  const logs: { to: LeaseStatus; log: Omit<LogEntry, 'leaseId'> }[] = [{ to, log }];
  if (extras.then) {
    assertLeaseTransition(lease.id, to, extras.then.to);
    for (const [column, value] of leaseAssignments(ctx, to, extras.then.to, extras.then.log.type, {}))
      set.set(column, value);
    logs.push(extras.then);
  }
  const guard = extras.onActiveResource;
  const ctes: Prisma.Sql[] = [];
  if (guard !== undefined)
    ctes.push(Prisma.sql`r AS (SELECT status FROM "Resource" WHERE id = ${guard} AND "drainingAt" IS NULL FOR SHARE)`);
  // A grant takes the resource's next fence in its own statement, so no holder can ever see a
  // fence lower than one handed out before it. Grants of a type are made by its one pass at a
  // time, so the resource's row lock taken here serializes nothing that was parallel.
  const granted = lease.status === 'PENDING' && (to === 'ACQUIRED' || to === 'ACTIVE') && extra.resourceId;
  if (granted) {
    ctes.push(Prisma.sql`f AS (
      UPDATE "Resource" SET "fenceCounter" = "fenceCounter" + 1 WHERE id = ${extra.resourceId}
        ${guard !== undefined ? Prisma.sql`AND (SELECT status FROM r) = 'ACTIVE'` : Prisma.empty}
      RETURNING "fenceCounter")`);
    set.set('fence', Prisma.sql`(SELECT "fenceCounter" FROM f)`);
  }
  // The resources whose logs the entries go to hold their row lock before the entries take their
  // ids (see writeLog); a grant's fence update above holds it already.
  const resourceAfter = extra.resourceId !== undefined ? extra.resourceId : lease.resourceId;
  const logResources = [
    ...new Set(logs.map(({ log: entry }) => entry.resourceId ?? resourceAfter).filter((id) => id !== null)),
  ].filter((id) => !(granted && id === extra.resourceId));
  if (logResources.length > 0)
    ctes.push(
      Prisma.sql`k AS (SELECT id FROM "Resource" WHERE id = ANY(${logResources}::int[]) ORDER BY id FOR NO KEY UPDATE)`,
    );
  ctes.push(Prisma.sql`u AS (
    UPDATE "Lease" SET ${setClause([...set])} WHERE id = ${lease.id}
      ${guard !== undefined ? Prisma.sql`AND (SELECT status FROM r) = 'ACTIVE'` : Prisma.empty}
    RETURNING *)`);
  // One row per log, inserted (and so numbered) in the order of the transitions.
  ctes.push(Prisma.sql`g AS (
    INSERT INTO "Log" (type, data, "createdAt", "leaseId", "resourceId", "blueprintId")
    SELECT e.type, e.data::jsonb, ${ctx.now}::timestamp, u.id, COALESCE(e.resource, u."resourceId"), e.blueprint
    FROM u, unnest(${logs.map((l) => l.log.type)}::text[], ${logs.map((l) => JSON.stringify(l.log.data))}::text[],
                   ${logs.map((l) => l.log.resourceId ?? null)}::int[], ${logs.map((l) => l.log.blueprintId ?? null)}::int[])
           WITH ORDINALITY AS e(type, data, resource, blueprint, n)
    ${logResources.length > 0 ? Prisma.sql`WHERE (SELECT count(*) FROM k) >= 0` : Prisma.empty}
    ORDER BY e.n
    RETURNING id)`);
  if (extras.releaseSlotLocks)
    ctes.push(
      Prisma.sql`s AS (DELETE FROM "SlotLock" WHERE "ownerLeaseId" = ${lease.id} AND EXISTS (SELECT 1 FROM u))`,
    );
  const [row] = await ctx.tx.$queryRaw<
    (Partial<Lease> & { __logs: string[] | null; __resource: ResourceStatus | null })[]
  >`
    WITH ${Prisma.join(ctes, ', ')}
    SELECT u.*, (SELECT array_agg(id::text ORDER BY id) FROM g) AS __logs,
           ${guard !== undefined ? Prisma.sql`(SELECT status::text FROM r)` : Prisma.sql`NULL::text`} AS __resource
    FROM (SELECT 1) AS one LEFT JOIN u ON true`;
  const { __logs: logIds, __resource: resourceStatus, ...columns } = row!;
  if (columns.id === null || columns.id === undefined) return { lease: null, resourceStatus };
  const updated = columns as Lease;
  if (extras.wake) schedulePass(ctx, lease.resourceType);
  // A resource that holds this lease for itself (a working copy's host) waits on it: tell it.
  if (updated.ownerResourceId !== null) scheduleResourceUpdate(ctx, updated.ownerResourceId);
  logs.forEach((entry, i) =>
    publishLog(
      ctx.after,
      {
        leaseId: lease.id,
        resourceId: entry.log.resourceId ?? updated.resourceId,
        blueprintId: entry.log.blueprintId ?? null,
      },
      BigInt(logIds![i]!),
      { lease: entry.to },
    ),
  );
  return { lease: updated, resourceStatus };
}

export async function transitionResource<T extends LogType>(
  ctx: TxContext,
  resource: Resource,
  to: ResourceStatus,
  log: Omit<LogEntry<T>, 'resourceId' | 'blueprintId'>,
  extra: ResourceChanges = {},
): Promise<Resource> {
  assertResourceTransition(resource.id, resource.status, to);
  // Its blueprint's warm pool, if it keeps one, counts again (jobs.ts writes it only then).
  scheduleWarmPool(ctx, resource.blueprintId);
  const set: Assignment[] = [
    ['status', Prisma.sql`${to}::"ResourceStatus"`],
    ['updatedAt', timestamp(ctx.now)],
  ];
  const stamp = resourceTimestamps[to];
  if (stamp) set.push([stamp, timestamp(ctx.now)]);
  if (to === 'BROKEN' || to === 'RELEASED') set.push(['statusReason', Prisma.sql`${log.type}`]);
  if (extra.attributes !== undefined) set.push(['attributes', Prisma.sql`${JSON.stringify(extra.attributes)}::jsonb`]);
  // Row and log in one statement, as for leases.
  const [row] = await ctx.tx.$queryRaw<(Resource & { __log: bigint })[]>`
    WITH u AS (UPDATE "Resource" SET ${setClause(set)} WHERE id = ${resource.id} RETURNING *),
    g AS (
      INSERT INTO "Log" (type, data, "createdAt", "leaseId", "resourceId", "blueprintId")
      SELECT ${log.type}, ${JSON.stringify(log.data)}::jsonb, ${ctx.now}::timestamp, ${log.leaseId ?? null}::int,
             u.id, u."blueprintId"
      FROM u RETURNING id)
    SELECT u.*, g.id AS __log FROM u, g`;
  if (!row) throw new Error(`resource ${resource.id} vanished during its own update`);
  const { __log: logId, ...updated } = row;
  publishLog(
    ctx.after,
    { leaseId: log.leaseId ?? null, resourceId: resource.id, blueprintId: resource.blueprintId },
    logId,
    {
      resource: to,
    },
  );
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

/** How many logs of `type` an object has (how many times a retried step failed so far). */
export async function countLogs(
  ctx: TxContext,
  object: { leaseId: number } | { resourceId: number },
  type: LogType,
): Promise<number> {
  const [row] =
    'leaseId' in object
      ? await ctx.tx.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM "Log" WHERE "leaseId" = ${object.leaseId} AND type = ${type}`
      : await ctx.tx.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM "Log" WHERE "resourceId" = ${object.resourceId} AND type = ${type}`;
  return row?.n ?? 0;
}
