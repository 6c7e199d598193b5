import { Prisma, type JobKind } from '../generated/prisma/client.js';
import {
  continueRerunJobSql,
  deleteFinishedJobSql,
  jobKey,
  releaseJobSql,
  startOrCancel,
  upsertConflictSql,
} from '../queue/jobs.js';
import { planGenerically } from '../db/statements.js';
import type { Reservation } from '../queue/port.js';
import type { PassRequest, TxContext } from './context.js';

// Scheduling is part of the caller's transaction: the job exists exactly when the change that
// asked for it committed. One row per object (`key`) dedupes requests.

/** Asks for an update of one object at `runAt` (default now); written when the transaction ends. */
export function scheduleJob(ctx: TxContext, kind: JobKind, targetId: number, runAt: Date = ctx.now): void {
  const key = jobKey(kind, targetId);
  const existing = ctx.jobs.get(key);
  if (!existing || runAt < existing.runAt) ctx.jobs.set(key, { kind, targetId, runAt });
}

export const scheduleLeaseUpdate = (ctx: TxContext, leaseId: number, runAt?: Date) =>
  scheduleJob(ctx, 'LEASE_UPDATE', leaseId, runAt);
export const scheduleResourceUpdate = (ctx: TxContext, resourceId: number, runAt?: Date) =>
  scheduleJob(ctx, 'RESOURCE_UPDATE', resourceId, runAt);
export const scheduleBlueprintMaintenance = (ctx: TxContext, blueprintId: number, runAt?: Date) =>
  scheduleJob(ctx, 'BLUEPRINT_MAINTENANCE', blueprintId, runAt);
/**
 * Asks the blueprint's warm pool to look at what it holds (see warm-pool.ts). Written only when the
 * blueprint keeps one (minReady > 0), checked by the statement that writes the jobs: callers that
 * change a blueprint's resources need not read the blueprint for it.
 */
export const scheduleWarmPool = (ctx: TxContext, blueprintId: number, runAt?: Date) =>
  scheduleJob(ctx, 'WARM_POOL', blueprintId, runAt);

/**
 * Asks for the scheduling pass of `resourceType` (see scheduler/pass.ts): something its waiting
 * leases wait for may have changed. Written with the transaction's jobs; a pass that is running
 * now runs once more after it (the job's rerun flag), so that marks made during a pass are never
 * lost and many of them cost one more pass, not one each.
 */
/**
 * The queue row of `resourceType`, made if it is the type's first lease (see schedulePass). Looked
 * for first: a pass updates its type's row (its turn) and holds it until it commits, and an insert
 * that meets a key whose latest version is not committed yet waits for that transaction, so that
 * a request of the type would wait for the pass running now (which, building a resource, may take
 * long). Only two first leases of a type made at once still meet, each for the other's insert.
 */
export async function ensureQueue(ctx: TxContext, resourceType: string): Promise<void> {
  await ctx.tx.$executeRaw`
    INSERT INTO "ResourceTypeQueue" ("resourceType")
    SELECT ${resourceType}::text
    WHERE NOT EXISTS (SELECT 1 FROM "ResourceTypeQueue" WHERE "resourceType" = ${resourceType})
    ON CONFLICT DO NOTHING`;
}

/**
 * `capacity`: something this transaction did may let a lease waiting patiently be served (capacity
 * freed, a resource opened, a blueprint or quota changed). Such a request moves the type's
 * capacity epoch on (see scheduler/capacity-epoch.ts), so that the next pass tries those leases
 * again; the default, since a request that wrongly says so costs a try, and one that wrongly says
 * not would leave a lease waiting until the idle retry. Requests, retries and a pass asking for
 * itself say not.
 */
export function schedulePass(
  ctx: TxContext,
  resourceType: string,
  runAt: Date = ctx.now,
  { capacity = true }: { capacity?: boolean } = {},
): void {
  mergePass(ctx.passes, resourceType, { runAt, capacity });
}

/** Several requests for one type's pass: the earliest time, and capacity if any said so. */
export function mergePass(passes: Map<string, PassRequest>, resourceType: string, request: PassRequest): void {
  const existing = passes.get(resourceType);
  passes.set(resourceType, {
    runAt: existing && existing.runAt <= request.runAt ? existing.runAt : request.runAt,
    capacity: request.capacity || (existing?.capacity ?? false),
  });
}

/**
 * The transaction's last statement: writes its job requests (and passes), in key order, so that the job rows
 * stay locked only until commit and two transactions touching the same jobs lock them in the same
 * order, never in a cycle. Several requests collapse into the earliest time; a request made while
 * the job runs marks it to run once more afterwards (`rerun`), at the earliest time asked for
 * during the run.
 *
 * When the transaction runs as a job (`ctx.claim`), a request for that same job is not written:
 * the row is this worker's until the handler returns, and its completion then keeps it with this
 * time instead of deleting it (one statement instead of an upsert that marks it to run again, a
 * failed delete and an update). That completion stays outside a transaction after which more of
 * the job runs: a job row released by the commit could be claimed by another process before this
 * handler has returned, and one object's update must never be seen running twice at once.
 *
 * A transaction that ends its job (`ctx.endsJob`: the handler does nothing after it) completes it
 * in this same statement instead, as the worker's completion would a round trip later, when
 * nothing of the job's work is left to run either: its row is deleted when nothing asked for it
 * again; kept claimed when it is due again now (asked for while it ran, or by this transaction),
 * and the worker runs it again at once (JobClaim.again); released for its time when it is wanted
 * later. A request committed after a delete writes a new row, which waits for the row lock this
 * transaction holds until it commits. Under load nearly every pass ends so with its job wanted
 * again, which otherwise cost a completion and a claim, two transactions between two passes.
 */
export async function writeScheduledJobs(ctx: TxContext): Promise<void> {
  const claim = ctx.claim;
  const own = claim ? ctx.jobs.get(claim.job.key) : undefined;
  if (claim && own) ctx.jobs.delete(claim.job.key);
  const ending = claim && ctx.endsJob ? claim : null;
  // When the job is wanted again, as this transaction or an earlier one of its run asked.
  const wantedAt = claim ? earliest(own?.runAt, claim.rescheduleAt) : null;
  if (claim && own && !ending) ctx.onCommit?.push(() => (claim.rescheduleAt = earliest(own.runAt, claim.rescheduleAt)));
  if (ctx.jobs.size === 0 && ctx.passes.size === 0 && !ending) return;
  const entries = [...ctx.jobs.entries()];
  const passes = [...ctx.passes.entries()];
  const reservation = reservePass(ctx, passes);
  const token = reservation?.slot.token ?? null;
  let rows: {
    key: string | null;
    id: bigint;
    targetId: number;
    runAt: Date | null;
    attempts: number;
    mine: boolean | null;
  }[];
  let sentAt = 0;
  try {
    // Passes are asked for by type; their job is keyed by the type's queue row (pass:<id>). The
    // conflict rules are upsertJobSql's (upsertConflictSql): a reserved pass is claimed only if
    // nobody holds it. The ending job's row comes back with no key. Its shape changes with what
    // the transaction asks for (empty lists, no ending job), so PostgreSQL would plan it anew on
    // every run, which costs more than running it: it runs its generic plan.
    // A pass's last grant write, sent without waiting (PassGrants.finish), that left a lease
    // PENDING marked the job to run again (rerun), which the conditions below read as any request's.
    const now = ctx.deps.options.clock();
    const dueNow = Prisma.sql`${wantedAt !== null && wantedAt <= now}::boolean`;
    const sql = planGenerically(Prisma.sql`
      WITH done AS (${deleteFinishedJobSql(ending?.job ?? null, Prisma.sql`NOT ${dueNow} AND ${wantedAt === null}::boolean`)}),
      again AS (${continueRerunJobSql(ending?.job ?? null, now, dueNow)}),
      released AS (${releaseJobSql(ending?.job ?? null, now, wantedAt, dueNow)}),
      written AS (
        INSERT INTO "Job" (key, kind, "targetId", "runAt", "lockedBy", "lockedUntil", attempts, "capacityMark")
        SELECT k, c::"JobKind", t, r::timestamp, o, u::timestamp, CASE WHEN o IS NULL THEN 0 ELSE 1 END,
               CASE WHEN m THEN pg_current_xact_id()::text::bigint END FROM (
          SELECT k, c, t, r, NULL::text AS o, NULL::text AS u, false AS m
          FROM unnest(${entries.map(([key]) => key)}::text[], ${entries.map(([, job]) => job.kind)}::text[],
                      ${entries.map(([, job]) => job.targetId)}::int[],
                      ${entries.map(([, job]) => job.runAt.toISOString())}::text[]) AS j(k, c, t, r)
          WHERE c <> 'WARM_POOL' OR EXISTS (SELECT 1 FROM "Blueprint" b WHERE b.id = t AND b."minReady" > 0)
          UNION ALL
          SELECT 'pass:' || q.id, 'SCHEDULING_PASS', q.id, p.r,
                 CASE WHEN p.type = ${reservation?.type ?? null}::text THEN ${token}::text END,
                 CASE WHEN p.type = ${reservation?.type ?? null}::text THEN ${reservation?.slot.lockedUntil.toISOString() ?? null}::text END,
                 p.m
          FROM unnest(${passes.map(([type]) => type)}::text[], ${passes.map(([, pass]) => pass.runAt.toISOString())}::text[],
                      ${passes.map(([, pass]) => pass.capacity)}::boolean[]) AS p(type, r, m)
          JOIN "ResourceTypeQueue" q ON q."resourceType" = p.type) AS s
        ORDER BY k
        ${upsertConflictSql}
        RETURNING key, id, "targetId", "runAt", attempts, COALESCE("lockedBy" = ${token}::text, false) AS mine)
      SELECT key, id, "targetId", "runAt" AT TIME ZONE 'UTC' AS "runAt", attempts, mine FROM written
      UNION ALL SELECT NULL, id, NULL, NULL, NULL, NULL FROM done
      UNION ALL SELECT NULL, id, NULL, NULL, NULL, true FROM again
      UNION ALL SELECT NULL, id, NULL, "runAt" AT TIME ZONE 'UTC', NULL, false FROM released`);
    // The transaction's last statement: its COMMIT goes with it where the database allows.
    sentAt = performance.now();
    rows = ctx.tx.$queryRawAndCommit ? await ctx.tx.$queryRawAndCommit(sql) : await ctx.tx.$queryRaw(sql);
  } catch (error) {
    reservation?.slot.cancel();
    throw error;
  }
  const written = rows.filter(
    (row): row is (typeof rows)[number] & { key: string; runAt: Date; mine: boolean } => row.key !== null,
  );
  // The ending job's row: deleted, kept claimed to run again (mine), released for its time (runAt),
  // or none of them (asked for again as this ran): then the worker's completion sees to it.
  const finished = rows.find((row) => row.key === null);
  if (ending)
    ctx.onCommit?.push(() => {
      if (finished?.mine) ending.again = true;
      else if (finished) [ending.completedAt, ending.rescheduleAt] = [sentAt, finished.runAt];
      else ending.rescheduleAt = wantedAt;
    });
  const started = reservation ? written.find((row) => row.mine) : undefined;
  if (reservation) {
    if (started) {
      // Run it here as soon as this commits; given back if it does not.
      ctx.onCommit!.push(() => startOrCancel(reservation.slot, 'SCHEDULING_PASS', started.targetId, started));
      ctx.onRollback!.push(() => reservation.slot.cancel());
    } else reservation.slot.cancel();
  }
  for (const [, job] of entries) ctx.after.jobScheduled(job.runAt);
  for (const [type, pass] of passes) if (!started || type !== reservation?.type) ctx.after.jobScheduled(pass.runAt);
  ctx.jobs.clear();
  ctx.passes.clear();
}

const earliest = (...times: (Date | null | undefined)[]): Date | null =>
  times.reduce<Date | null>((first, at) => (at && (!first || at < first) ? at : first), null);

/**
 * A worker slot of this process for the first pass asked for now (a release's, most often): the
 * pass is written already claimed and starts when this transaction commits, with no claim
 * statement and no wake-up round trip. None when no slot is free, when the transaction runs as a
 * job whose completion is still to come (a pass asking for itself), or outside `run`.
 */
function reservePass(ctx: TxContext, passes: [string, PassRequest][]): { type: string; slot: Reservation } | null {
  if (!ctx.onCommit || !ctx.onRollback) return null;
  const due = passes.find(([, pass]) => pass.runAt <= ctx.now);
  if (!due) return null;
  const slot = ctx.deps.queue.reserve();
  return slot ? { type: due[0], slot } : null;
}
