import { Prisma, type Lease } from '../generated/prisma/client.js';
import { rawQueries } from '../db/raw-sql.js';
import type { AllocatorDeps } from './context.js';
import { inUpdateTransaction } from './transaction.js';
import { retryingDeadlocks } from './deadlocks.js';
import { publishLog } from './logs.js';
import { leaseOnResourceStatuses, liveLeaseStatuses } from './state-machines.js';

// A lease's holder: its liveness (heartbeats) and its hand-off to another principal. Both write
// the lease row, so they live here with the other writers, not in the services.

export type HeartbeatOutcome =
  | { kind: 'seen'; lease: Lease }
  | { kind: 'not-found' }
  | { kind: 'refused'; lease: Lease }
  | { kind: 'over'; lease: Lease };

/**
 * The holder was seen now: one statement, which only moves `lastSeenAt` (written only if `may`,
 * an SQL condition on the lease row, holds and the lease is still live). The lease's own update,
 * already scheduled at the old deadline, looks again when it comes and moves itself; so a
 * heartbeat never touches the job queue. Failures are read back only when there is one.
 */
export async function heartbeatLease(deps: AllocatorDeps, leaseId: number, may: Prisma.Sql): Promise<HeartbeatOutcome> {
  const now = deps.options.clock();
  const raw = await rawQueries(deps.db);
  // A gang's parts share one holder: seeing it through one part sees it for all of them.
  const rows = await retryingDeadlocks(
    deps,
    'heartbeat',
    () => raw.$queryRaw<Lease[]>`
      UPDATE "Lease" SET "lastSeenAt" = GREATEST("lastSeenAt", ${now}::timestamp)
      WHERE ${sameHolder(leaseId)} AND (${may}) IS TRUE AND status::text = ANY(${liveLeaseStatuses}::text[])
      RETURNING *`,
  );
  const seen = rows.find((row) => row.id === leaseId);
  if (seen) return { kind: 'seen', lease: seen };
  const [lease] = await raw.$queryRaw<(Lease & { __may: boolean })[]>`
    SELECT *, (${may}) IS TRUE AS __may FROM "Lease" WHERE id = ${leaseId}`;
  if (!lease) return { kind: 'not-found' };
  const { __may: allowed, ...row } = lease;
  return allowed ? { kind: 'over', lease: row } : { kind: 'refused', lease: row };
}

/**
 * A subscription's keep-alive: the lease, if `ownerId` owns it, it is live and has a heartbeat,
 * was seen now. Returns its heartbeatSeconds, or null when nothing was written (no need to go on).
 */
export async function leaseSeen(deps: AllocatorDeps, ownerId: number, leaseId: number): Promise<number | null> {
  const now = deps.options.clock();
  const raw = await rawQueries(deps.db);
  const [row] = await retryingDeadlocks(
    deps,
    'subscription keep-alive',
    () => raw.$queryRaw<{ heartbeatSeconds: number }[]>`
      WITH u AS (
        UPDATE "Lease" SET "lastSeenAt" = GREATEST("lastSeenAt", ${now}::timestamp)
        WHERE ${sameHolder(leaseId)} AND "ownerId" = ${ownerId}::int AND "heartbeatSeconds" IS NOT NULL
          AND status::text = ANY(${liveLeaseStatuses}::text[])
        RETURNING id, "heartbeatSeconds")
      SELECT "heartbeatSeconds" FROM u WHERE u.id = ${leaseId}`,
  );
  return row?.heartbeatSeconds ?? null;
}

/**
 * The lease and, when it is a gang's part, the gang's other parts: they have one holder. Their
 * rows are locked first, in id order (the subquery runs once, before the statement's own scan), as
 * the release and the pass lock them: updated in the order a scan finds them (a part whose row an
 * update moved comes after the others), a heartbeat could hold one part while waiting for another
 * that a release holds while waiting for the first, and PostgreSQL would fail one of them.
 */
const sameHolder = (leaseId: number) => Prisma.sql`
  id = ANY(ARRAY(
    SELECT id FROM "Lease"
    WHERE id = ${leaseId} OR "gangId" = (SELECT g."gangId" FROM "Lease" g WHERE g.id = ${leaseId})
    ORDER BY id FOR NO KEY UPDATE))`;

export type TransferOutcome =
  | { kind: 'transferred'; lease: Lease }
  | { kind: 'not-found' }
  | { kind: 'not-live'; lease: Lease }
  | { kind: 'recipient-not-authorized'; blueprintId: number }
  | { kind: 'recipient-at-quota'; resourceType: string; quota: number }
  | { kind: 'no-recipient' };

/**
 * Gives a live lease (ACQUIRED or ACTIVE) to another principal, under the lease's lock: the new
 * owner, a new fence from the resource (the old holder's fence is stale from this commit on), the
 * holder seen now, and a log naming both principals and who did it. The recipient must be allowed
 * to lease from the resource's blueprint (an admin or system principal, or an active, authorized
 * authorization), checked in the same statement that writes.
 */
export async function transferLease(
  deps: AllocatorDeps,
  leaseId: number,
  toPrincipalId: number,
  byPrincipalId: number,
  allowed: (lease: Lease) => boolean,
): Promise<TransferOutcome | { kind: 'refused'; lease: Lease }> {
  return inUpdateTransaction(deps, async (ctx) => {
    // A recipient with a quota of the lease's type must not pass it by being handed leases: its
    // live leases are counted under the type's turn, which every scheduling pass of the type
    // holds while it grants, so that a pass and a transfer cannot both count the same room. The
    // turn is taken before the lease's lock, in the order a pass takes them; without a quota no
    // turn is needed, and a transfer does not wait for the type's running pass.
    const [kind] = await ctx.tx.$queryRaw<{ resourceType: string; hasQuota: boolean }[]>`
      SELECT l."resourceType", EXISTS (SELECT 1 FROM "Quota" q
        WHERE q."principalId" = ${toPrincipalId} AND q."resourceType" = l."resourceType") AS "hasQuota"
      FROM "Lease" l WHERE l.id = ${leaseId}`;
    if (!kind) return { kind: 'not-found' as const };
    if (kind.hasQuota)
      await ctx.tx.$queryRaw`
        SELECT 1 FROM "ResourceTypeQueue" WHERE "resourceType" = ${kind.resourceType} FOR NO KEY UPDATE`;
    const [lease] = await ctx.tx.$queryRaw<Lease[]>`SELECT * FROM "Lease" WHERE id = ${leaseId} FOR NO KEY UPDATE`;
    if (!lease) return { kind: 'not-found' as const };
    if (!allowed(lease)) return { kind: 'refused' as const, lease };
    if (!leaseOnResourceStatuses.includes(lease.status) || lease.resourceId === null)
      return { kind: 'not-live' as const, lease };
    const [recipient] = await ctx.tx.$queryRaw<{ authorized: boolean; blueprintId: number }[]>`
      SELECT (p."isAdmin" OR p.kind = 'SYSTEM' OR EXISTS (
                SELECT 1 FROM "Authorization" a
                WHERE a."principalId" = p.id AND a."blueprintId" = r."blueprintId"
                  AND a."blueprintState" = 'AUTHORIZED' AND a."objectState" = 'ACTIVE')) AS authorized,
             r."blueprintId"
      FROM "Principal" p, "Resource" r WHERE p.id = ${toPrincipalId} AND r.id = ${lease.resourceId}`;
    if (!recipient) return { kind: 'no-recipient' as const };
    if (!recipient.authorized) return { kind: 'recipient-not-authorized' as const, blueprintId: recipient.blueprintId };
    if (kind.hasQuota) {
      const [room] = await ctx.tx.$queryRaw<{ quota: number | null; live: number }[]>`
        SELECT (SELECT q."maxLeases" FROM "Quota" q
                WHERE q."principalId" = ${toPrincipalId} AND q."resourceType" = ${lease.resourceType}) AS quota,
               (SELECT count(*)::int FROM "Lease" l
                WHERE l."resourceType" = ${lease.resourceType} AND l."ownerId" = ${toPrincipalId}
                  AND l.status IN ('ACQUIRED', 'ACTIVE') AND l.id <> ${leaseId}) AS live`;
      if (room && room.quota !== null && room.live + 1 > room.quota)
        return { kind: 'recipient-at-quota' as const, resourceType: lease.resourceType, quota: room.quota };
    }
    const data = { fromPrincipalId: lease.ownerId, toPrincipalId, byPrincipalId };
    const [row] = await ctx.tx.$queryRaw<(Lease & { __log: bigint })[]>`
      WITH f AS (
        UPDATE "Resource" SET "fenceCounter" = "fenceCounter" + 1 WHERE id = ${lease.resourceId}
        RETURNING "fenceCounter"),
      u AS (
        UPDATE "Lease" SET "ownerId" = ${toPrincipalId}::int, "authorizingPrincipalId" = ${toPrincipalId}::int,
               fence = (SELECT "fenceCounter" FROM f),
               "lastSeenAt" = CASE WHEN "heartbeatSeconds" IS NULL THEN "lastSeenAt" ELSE ${ctx.now}::timestamp END,
               "updatedAt" = ${ctx.now}::timestamp
        WHERE id = ${leaseId} RETURNING *),
      g AS (
        INSERT INTO "Log" (type, data, "createdAt", "leaseId", "resourceId")
        SELECT 'lease-transferred', ${JSON.stringify(data)}::jsonb || jsonb_build_object('fence', u.fence),
               ${ctx.now}::timestamp, u.id, u."resourceId"
        FROM u RETURNING id)
      SELECT u.*, g.id AS __log FROM u, g`;
    const { __log: logId, ...updated } = row!;
    publishLog(ctx.after, { leaseId, resourceId: updated.resourceId }, logId, { lease: updated.status });
    return { kind: 'transferred' as const, lease: updated };
  });
}
