import { Prisma, type Lease, type LeaseStatus } from '../generated/prisma/client.js';
import { rawQueries } from '../db/raw-sql.js';
import { startOrCancel, upsertJobSql } from '../queue/jobs.js';
import type { Reservation } from '../queue/port.js';
import { AfterCommit, CarriedCommit, type AllocatorDeps } from './context.js';
import { inUpdateTransaction } from './transaction.js';
import { retryingDeadlocks } from './deadlocks.js';
import { ensureQueue, scheduleLeaseUpdate, schedulePass } from './jobs.js';
import { publishLog } from './logs.js';
import { leaseTransitions } from './state-machines.js';
import { holderDeadline } from './lease-update.js';

// Requests and releases as single statements: the lease (or command), its log and the job that
// moves it, in one round trip and one commit. Services validate and decide access; these write.

export interface NewLease {
  resourceType: string;
  attributes: Record<string, unknown>;
  until: Date | null;
  blueprintIds: number[];
  ownerId: number;
  priority: number;
  waitUntil: Date | null;
  /** The holder must show it is alive this often (heartbeats, an open subscription); null: no need. */
  heartbeatSeconds: number | null;
}

/** The distinct implementations of the blueprints of a type, sorted, as a text[] expression. */
export const implementationsSql = (resourceType: string) => Prisma.sql`
  ARRAY(SELECT DISTINCT implementation FROM "Blueprint" WHERE "resourceType" = ${resourceType} ORDER BY implementation)`;

// The job the statement wrote (upsertJobSql's columns), next to the lease's.
const jobColumns = Prisma.sql`j.id AS __job_id, j.key AS __job_key, j."runAt" AS __job_run_at,
  j.attempts AS __job_attempts, j.mine AS __job_mine, j.held AS __job_held`;

type JobRow = { id: bigint; key: string; runAt: Date; attempts: number; mine: boolean };
type LeaseRow = Lease & {
  __log: bigint | null;
  __job_id: bigint | null;
  __job_key: string | null;
  __job_run_at: Date | null;
  __job_attempts: number | null;
  __job_mine: boolean | null;
  __job_held: boolean | null;
};

function splitRow<T extends LeaseRow>(row: T) {
  const {
    __log: logId,
    __job_id: id,
    __job_key: key,
    __job_run_at: runAt,
    __job_attempts: attempts,
    __job_mine: mine,
    __job_held: held,
    ...rest
  } = row;
  const job: JobRow | undefined =
    id !== null && key !== null && runAt !== null
      ? { id, key, runAt, attempts: Number(attempts), mine: mine === true }
      : undefined;
  return { rest, logId, job, held: held === true };
}

/**
 * Inserts a PENDING lease, its log, the type's scheduling pass (claimed by this process's worker
 * when a slot is free, so the pass starts as soon as this returns) and, with a wait timeout, the
 * lease's update at `waitUntil` (or its holder's first deadline, if sooner): written only if the type's blueprints still have the
 * implementations `seen` (what the caller validated the attributes against). Returns the lease, or
 * the implementations as they are now when they differ.
 */
export async function requestLease(
  deps: AllocatorDeps,
  request: NewLease,
  seen: string[],
): Promise<{ lease: Lease } | { implementations: string[] }> {
  const now = deps.options.clock();
  const requested = { resourceType: request.resourceType, until: request.until?.toISOString() ?? null };
  // A pass paced to start later is left to the worker's timer: this process's slot would idle till then.
  const delayMs = deps.passPacing?.delayMs(request.resourceType) ?? 0;
  const passAt = delayMs > 0 ? new Date(now.getTime() + delayMs) : now;
  const reservation = delayMs > 0 ? null : deps.queue.reserve();
  let row: (LeaseRow & { __impls: string[]; __queue: number | null }) | undefined;
  try {
    [row] = await (
      await rawQueries(deps.db)
    ).$queryRaw<(LeaseRow & { __impls: string[]; __queue: number | null })[]>`
      WITH seen AS (SELECT ${implementationsSql(request.resourceType)} AS impls),
      l AS (
        INSERT INTO "Lease" ("resourceType", attributes, until, "allowedBlueprintIds", "ownerId",
                             "authorizingPrincipalId", priority, "waitUntil", "heartbeatSeconds", "lastSeenAt",
                             "createdAt", "updatedAt")
        SELECT ${request.resourceType}, ${JSON.stringify(request.attributes)}::jsonb, ${request.until}::timestamp,
               ${request.blueprintIds}::int[], ${request.ownerId}::int, ${request.ownerId}::int,
               ${request.priority}::int, ${request.waitUntil}::timestamp, ${request.heartbeatSeconds}::int,
               ${request.heartbeatSeconds === null ? null : now}::timestamp, ${now}::timestamp, ${now}::timestamp
        FROM seen WHERE impls = ${seen}::text[]
        RETURNING *),
      g AS (
        INSERT INTO "Log" (type, data, "createdAt", "leaseId")
        SELECT 'lease-requested', ${JSON.stringify(requested)}::jsonb, ${now}::timestamp, l.id FROM l RETURNING id),
      q AS (SELECT id FROM "ResourceTypeQueue" WHERE "resourceType" = ${request.resourceType} AND EXISTS (SELECT 1 FROM l)),
      j AS (${upsertJobSql('SCHEDULING_PASS', Prisma.sql`SELECT id FROM q`, passAt, reservation)}),
      w AS (
        INSERT INTO "Job" (key, kind, "targetId", "runAt")
        SELECT 'lease:' || l.id, 'LEASE_UPDATE', l.id,
               LEAST(l."waitUntil", l.until, l."lastSeenAt" + make_interval(secs => l."heartbeatSeconds"))
        FROM l WHERE l."waitUntil" IS NOT NULL OR l.until IS NOT NULL OR l."heartbeatSeconds" IS NOT NULL)
      SELECT l.*, g.id AS __log, ${jobColumns}, seen.impls AS __impls, (SELECT id FROM q) AS __queue
      FROM seen LEFT JOIN l ON true LEFT JOIN g ON true LEFT JOIN j ON true`;
  } catch (error) {
    reservation?.cancel();
    throw error;
  }
  if (!row || row.__log === null) {
    reservation?.cancel();
    return { implementations: row?.__impls ?? [] };
  }
  const { rest, logId, job, held } = splitRow(row);
  const { __impls: _impls, __queue: queueId, ...lease } = rest;
  const after = new AfterCommit();
  publishLog(after, { leaseId: lease.id }, logId!, { lease: lease.status });
  // The lease's own first look (wait timeout, expiry, holder's deadline) is due later, and the
  // wake-up of a commit names only its earliest job (the pass, now): a worker's timer is told of
  // this one apart, or only its periodic sweep would find it. Expiry too: a lease still waiting at
  // its `until` ends there (a pass that never serves it must not keep it, or an aged one's
  // reservation, forever).
  const firstLook = [lease.waitUntil, lease.until, holderDeadline(lease)].filter((d): d is Date => d !== null);
  if (firstLook.length > 0) deps.queue.wake(new Date(Math.min(...firstLook.map((d) => d.getTime()))));
  if (queueId === null) {
    // The type's first lease: its queue row is made now, and its pass asked for with it.
    reservation?.cancel();
    after.flush(deps);
    await firstOfType(deps, lease.resourceType);
  } else if (!startOrCancel(reservation, 'SCHEDULING_PASS', queueId, job, new CarriedCommit(after, deps))) {
    // A pass running now (here or elsewhere) runs again when it completes, and serves this lease
    // then: a wake-up would only send workers looking for a job they cannot claim.
    if (!held) after.jobScheduled(passAt);
    after.flush(deps);
  }
  return { lease: lease as Lease };
}

async function firstOfType(deps: AllocatorDeps, resourceType: string): Promise<void> {
  await inUpdateTransaction(deps, async (ctx) => {
    await ensureQueue(ctx, resourceType);
    schedulePass(ctx, resourceType, ctx.now, { capacity: false });
  });
}

/** The statuses a RELEASE is accepted in (the state machine's, checked in the statement). */
const releasable = (Object.keys(leaseTransitions) as LeaseStatus[]).filter((from) =>
  leaseTransitions[from].includes('RELEASED'),
);

export type ReleaseOutcome =
  | { kind: 'released'; lease: Lease }
  | { kind: 'not-found' }
  | { kind: 'not-visible'; lease: Lease }
  | { kind: 'held-by-resource'; lease: Lease }
  | { kind: 'not-releasable'; lease: Lease };

/**
 * The RELEASE command, its log and the lease's job (claimed here when a worker slot is free), in
 * one statement, written only if `may` (an SQL condition on the lease row `l`) holds, the lease
 * is in a releasable status and no resource holds it for itself.
 */
export function requestRelease(
  deps: AllocatorDeps,
  leaseId: number,
  authorId: number,
  may: Prisma.Sql,
): Promise<ReleaseOutcome> {
  return retryingDeadlocks(deps, 'release', () => releaseOnce(deps, leaseId, authorId, may));
}

async function releaseOnce(
  deps: AllocatorDeps,
  leaseId: number,
  authorId: number,
  may: Prisma.Sql,
): Promise<ReleaseOutcome> {
  const now = deps.options.clock();
  const after = new AfterCommit();
  const reservation: Reservation | null = deps.queue.reserve();
  let row: (LeaseRow & { visible: boolean; __parts_due: boolean | null }) | undefined;
  // Every part's lock is taken before anything is written ("ok" aggregates "locked", reading all of
  // it before it yields a row). The statement's parts run as rows flow: a part's job could
  // otherwise be written while the next part's lock is still awaited, and a part's own update
  // holding that lock writes its siblings' jobs last (lease-update.ts, releaseOtherParts): each
  // would wait for the other, and PostgreSQL would end the deadlock by failing this release.
  try {
    [row] = await (
      await rawQueries(deps.db)
    ).$queryRaw<(LeaseRow & { visible: boolean; __parts_due: boolean | null })[]>`
      WITH l AS (SELECT *, (${may}) IS TRUE AS visible FROM "Lease" WHERE id = ${leaseId}),
      -- A gang's parts are released together. Their row locks are taken before their logs are
      -- numbered, as by every writer of a lease's log (logs.ts).
      locked AS (
        SELECT o.id FROM l JOIN "Lease" o ON o.id = l.id OR (l."gangId" IS NOT NULL AND o."gangId" = l."gangId")
        WHERE l.visible AND l."ownerResourceId" IS NULL AND o.status::text = ANY(${releasable}::text[])
        ORDER BY o.id FOR NO KEY UPDATE OF o),
      ok AS (SELECT unnest(array_agg(id)) AS id FROM locked),
      c AS (
        INSERT INTO "Command" (kind, "targetLeaseId", "authorId", "createdAt")
        SELECT 'RELEASE', id, ${authorId}::int, ${now}::timestamp FROM ok),
      g AS (
        INSERT INTO "Log" (type, data, "createdAt", "leaseId")
        SELECT 'lease-release-requested', ${JSON.stringify({ authorId })}::jsonb, ${now}::timestamp, id
        FROM ok RETURNING id, "leaseId"),
      j AS (${upsertJobSql('LEASE_UPDATE', Prisma.sql`SELECT id FROM ok WHERE id = ${leaseId}`, now, reservation)}),
      parts AS (${upsertJobSql('LEASE_UPDATE', Prisma.sql`SELECT id FROM ok WHERE id <> ${leaseId}`, now, null)})
      SELECT l.*, g.id AS __log, ${jobColumns}, (SELECT bool_or(NOT held) FROM parts) AS __parts_due
      FROM l LEFT JOIN g ON g."leaseId" = l.id LEFT JOIN j ON true`;
  } catch (error) {
    reservation?.cancel();
    throw error;
  }
  if (!row) {
    reservation?.cancel();
    return { kind: 'not-found' };
  }
  const { rest, logId, job } = splitRow(row);
  const { visible, __parts_due: partsDue, ...lease } = rest;
  if (!visible || logId === null) {
    reservation?.cancel();
    if (!visible) return { kind: 'not-visible', lease: lease as Lease };
    // A lease a resource holds for itself ends when that resource is released, never alone.
    if (lease.ownerResourceId !== null && releasable.includes(lease.status))
      return { kind: 'held-by-resource', lease: lease as Lease };
    return { kind: 'not-releasable', lease: lease as Lease };
  }
  publishLog(after, { leaseId }, logId, { lease: lease.status });
  // Published at once, not carried by the job as a request's event is: a release's subscribers
  // wait for this one (it acknowledges what they asked), and with many of them, holding it for
  // the update's commit delayed them more than the one event less saved.
  // The other parts' updates are due now too, and nobody runs them unless woken (the reserved
  // slot takes this lease's only): left to the sweep, a gang would stay half released that long.
  // One held by a worker is marked to run again and needs no wake-up.
  const started = startOrCancel(reservation, 'LEASE_UPDATE', leaseId, job);
  if (!started || partsDue === true) after.jobScheduled(now);
  after.flush(deps);
  return { kind: 'released', lease: lease as Lease };
}

export interface NewGang {
  parts: { resourceType: string; attributes: Record<string, unknown>; blueprintIds: number[]; count: number }[];
  until: Date | null;
  ownerId: number;
  priority: number;
  waitUntil: Date | null;
  /** For every part; heartbeats of any part count for all (holders.ts). */
  heartbeatSeconds: number | null;
}

/**
 * A gang: its row, every part's PENDING lease and log, and the passes of the parts' types, in one
 * transaction. The parts are granted together by a pass or not at all (scheduler/plan.ts).
 */
export async function requestGang(deps: AllocatorDeps, gang: NewGang): Promise<Lease[]> {
  const leases = gang.parts.flatMap((part) => Array.from({ length: part.count }, () => part));
  const rows = await inUpdateTransaction(deps, async (ctx) => {
    const types = [...new Set(leases.map((l) => l.resourceType))].sort();
    for (const type of types) await ensureQueue(ctx, type);
    const rows = await ctx.tx.$queryRaw<(Lease & { __log: bigint })[]>`
      WITH gang AS (INSERT INTO "Gang" ("ownerId", "createdAt") VALUES (${gang.ownerId}::int, ${ctx.now}::timestamp) RETURNING id),
      p AS (
        SELECT * FROM unnest(${leases.map((l) => l.resourceType)}::text[], ${leases.map((l) => JSON.stringify(l.attributes))}::text[],
                             ${leases.map((l) => l.blueprintIds.join(','))}::text[]) WITH ORDINALITY AS p(type, attributes, blueprints, n)),
      l AS (
        INSERT INTO "Lease" ("resourceType", attributes, until, "allowedBlueprintIds", "ownerId", "authorizingPrincipalId",
                             priority, "waitUntil", "gangId", "heartbeatSeconds", "lastSeenAt", "createdAt", "updatedAt")
        SELECT p.type, p.attributes::jsonb, ${gang.until}::timestamp,
               COALESCE(string_to_array(NULLIF(p.blueprints, ''), ',')::int[], '{}'), ${gang.ownerId}::int, ${gang.ownerId}::int,
               ${gang.priority}::int, ${gang.waitUntil}::timestamp, gang.id, ${gang.heartbeatSeconds}::int,
               ${gang.heartbeatSeconds === null ? null : ctx.now}::timestamp, ${ctx.now}::timestamp, ${ctx.now}::timestamp
        FROM p, gang ORDER BY p.n
        RETURNING *),
      g AS (
        INSERT INTO "Log" (type, data, "createdAt", "leaseId")
        SELECT 'lease-requested', json_build_object('resourceType', l."resourceType", 'until', ${gang.until?.toISOString() ?? null}::text, 'gangId', l."gangId")::jsonb,
               ${ctx.now}::timestamp, l.id
        FROM l ORDER BY l.id RETURNING id, "leaseId")
      SELECT l.*, g.id AS __log FROM l JOIN g ON g."leaseId" = l.id ORDER BY l.id`;
    for (const type of types) schedulePass(ctx, type, ctx.now, { capacity: false });
    return rows.map(({ __log: logId, ...lease }) => {
      publishLog(ctx.after, { leaseId: lease.id }, logId, { lease: lease.status });
      // Its first look: wait timeout, expiry, or the holder's first deadline (the part's update
      // looks then, and moves itself if the holder was seen since).
      const firstLook = [lease.waitUntil, lease.until, holderDeadline(lease)].filter((d): d is Date => d !== null);
      if (firstLook.length > 0)
        scheduleLeaseUpdate(ctx, lease.id, new Date(Math.min(...firstLook.map((d) => d.getTime()))));
      return lease;
    });
  });
  // As for a lease (requestLease): the commit's wake-up names only its earliest job (the pass,
  // unless this process's worker took it at once), so the worker's timer is told of the parts'
  // first look apart: without it a gang whose wait times out, or that expires still waiting,
  // would end only at the worker's sweep.
  const firstLook = rows
    .flatMap((lease) => [lease.waitUntil, lease.until, holderDeadline(lease)])
    .filter((d): d is Date => d !== null);
  if (firstLook.length > 0) deps.queue.wake(new Date(Math.min(...firstLook.map((d) => d.getTime()))));
  return rows;
}
