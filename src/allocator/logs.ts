import type { DomainEvent } from '../events/domain-events.js';
import type { TxContext } from './context.js';

// Every log type and the data it carries. A log is written in the transaction of what it reports
// and published as an event after commit, so what a subscriber sees always happened.

export interface SlotLockHolder {
  key: string;
  leaseId: number | null;
  resourceId: number | null;
}

export interface LogData {
  // lease
  'lease-requested': { resourceType: string; until: string | null; gangId?: number };
  'lease-acquired': { resourceId: number };
  'lease-activated': { resourceId: number };
  'lease-release-requested': { authorId: number | null };
  'lease-released': { reason: 'command' | 'expired' | 'resource-released' | 'gang-part-lost' | 'holder-lost' };
  'lease-holder-lost': { lastSeenAt: string; heartbeatSeconds: number };
  'lease-transferred': {
    fromPrincipalId: number | null;
    toPrincipalId: number;
    byPrincipalId: number;
    fence: number | null;
  };
  'lease-reacquiring': { resourceId: number; resourceStatus: string };
  'lease-broken': { reason: string; message: string; blueprintIds?: number[] };
  'lease-destroyed': Record<string, never>;
  'lease-command-started': { argv: string[]; principalId: number };
  'lease-command-finished': { argv: string[]; exitCode: number | null; timedOut: boolean; durationMs: number };
  'no-blueprints': { resourceType: string };
  'no-authorizations': { blueprintIds: number[] };
  'cannot-ever-allocate': { blueprintIds: number[] };
  'waiting-for-resources': { reason: string; blockers: Record<string, unknown> };
  'slot-lock-failure': { holders: SlotLockHolder[] };
  'allocation-failed-temporarily': { blueprintId: number; message: string };
  'reclaim-requested': { resourceId: number };
  'lease-setup-progress': { message: string; [key: string]: unknown };
  'lease-setup-failed-temporarily': { message: string };
  // resource
  'resource-allocated': { leaseId: number | null; status: string; warmPool?: true };
  'resource-activated': Record<string, never>;
  'resource-activation-failed-temporarily': { message: string };
  'resource-release-requested': { authorId: number | null; kind: 'release' | 'reclaim' };
  'resource-released': { reason: 'command' | 'reclaimed' | 'expired' | 'drained' };
  'resource-draining': { authorId: number | null; release: boolean; maintenance?: true };
  'resource-undrained': { authorId: number | null };
  'resource-reclaim-refused': { liveLeases: number };
  'resource-broken': { message: string; reason?: 'activation-failed' | 'health-check-failed'; hopeless?: true };
  'resource-check-failed-temporarily': { message: string };
  'resource-destroyed': Record<string, never>;
  'resource-setup-progress': { message: string; [key: string]: unknown };
  'resource-lease-requested': { leaseId: number; resourceType: string };
  'resource-teardown-failed': { message: string; attempt: number; permanent: boolean };
  'resource-teardown-abandoned': { message: string; attempts: number };
  // blueprint
  'blueprint-created': { name: string; implementation: string };
  'blueprint-updated': { fields: string[] };
  'blueprint-disabled': Record<string, never>;
  'blueprint-enabled': Record<string, never>;
  'authorization-requested': { principalId: number; authorizationId: number };
  'blueprint-maintenance': { message: string; [key: string]: unknown };
  'blueprint-maintenance-failed': { message: string };
  'warm-pool-failed': { message: string; retryAt: string };
  'authorization-changed': { principalId: number; authorizationId: number; state: string };
}

export type LogType = keyof LogData;

export interface LogEntry<T extends LogType = LogType> {
  type: T;
  data: LogData[T];
  leaseId?: number | null;
  resourceId?: number | null;
  blueprintId?: number | null;
}

export interface WrittenLog {
  id: bigint;
}

/**
 * Writes a log row. The event it publishes is about the most specific object the log names
 * (lease, then resource, then blueprint), carrying that object's current status when given.
 *
 * Every writer of a lease's or a resource's log holds that row's lock (FOR NO KEY UPDATE, or the
 * update it makes) from before its entry takes an id until it commits, so that one object's
 * entries commit in the order of their ids: leaseEvents and resourceEvents read past the highest
 * id they have seen, and an entry with a lower id that committed later would never be read. The
 * locks are taken here, in the insert's statement (lease first, then resource, the order a lease's
 * update takes them), before the id is drawn; for a caller that holds them already they cost an
 * index lookup.
 */
export async function writeLog<T extends LogType>(
  ctx: TxContext,
  entry: LogEntry<T>,
  status?: { lease?: string; resource?: string },
): Promise<WrittenLog> {
  const [log] = await ctx.tx.$queryRaw<WrittenLog[]>`
    WITH l AS (SELECT id FROM "Lease" WHERE id = ${entry.leaseId ?? null}::int FOR NO KEY UPDATE),
    r AS (
      SELECT id FROM "Resource" WHERE id = ${entry.resourceId ?? null}::int AND (SELECT count(*) FROM l) >= 0
      FOR NO KEY UPDATE)
    INSERT INTO "Log" (type, data, "createdAt", "leaseId", "resourceId", "blueprintId")
    SELECT ${entry.type}, ${JSON.stringify(entry.data)}::jsonb, ${ctx.now}::timestamp,
           ${entry.leaseId ?? null}::int, ${entry.resourceId ?? null}::int, ${entry.blueprintId ?? null}::int
    WHERE (SELECT count(*) FROM l) >= 0 AND (SELECT count(*) FROM r) >= 0
    RETURNING id`;
  if (!log) throw new Error('the log insert returned nothing');
  publishLog(ctx.after, entry, log.id, status);
  return log;
}

/** The event of a log row written (by writeLog or inside a bigger statement), for after commit. */
export function publishLog(
  after: { publish(event: DomainEvent): void },
  entry: Pick<LogEntry, 'leaseId' | 'resourceId' | 'blueprintId'>,
  id: bigint,
  status?: { lease?: string; resource?: string },
): void {
  const logId = id.toString();
  if (entry.leaseId != null && status?.lease) {
    after.publish({
      kind: 'lease',
      leaseId: entry.leaseId,
      status: status.lease,
      logId,
      // The entry is in that resource's log as well (resourceEvents): its stream is woken too.
      ...(entry.resourceId != null ? { resourceId: entry.resourceId } : {}),
    });
  } else if (entry.resourceId != null && entry.blueprintId != null && status?.resource) {
    after.publish({
      kind: 'resource',
      resourceId: entry.resourceId,
      blueprintId: entry.blueprintId,
      status: status.resource,
      logId,
    });
  } else if (entry.blueprintId != null) {
    after.publish({ kind: 'blueprint', blueprintId: entry.blueprintId, logId });
  }
}
