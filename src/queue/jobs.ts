import { Prisma, type JobKind } from '../generated/prisma/client.js';
import type { TxContext } from '../allocator/context.js';
import type { Carried, Reservation } from './worker.js';

// Scheduling is part of the caller's transaction: the job exists exactly when the change that
// asked for it committed. One row per object (`key`) dedupes requests.

const keyPrefix: Record<JobKind, string> = {
  LEASE_UPDATE: 'lease',
  RESOURCE_UPDATE: 'resource',
  BLUEPRINT_MAINTENANCE: 'blueprint',
};

export function jobKey(kind: JobKind, targetId: number): string {
  return `${keyPrefix[kind]}:${targetId}`;
}

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
 * The job of one object, due at `runAt`, as a statement for a WITH clause (RETURNING whether this
 * process now holds it), with the conflict rules of writeScheduledJobs. With a reservation, a job
 * nobody holds is written claimed by this process's worker, which runs it as soon as the
 * statement has committed (see reserveLocalSlot); one that is running elsewhere is marked to run
 * again, as any schedule does.
 */
export function upsertJobSql(
  kind: JobKind,
  target: Prisma.Sql,
  runAt: Date,
  reservation: Reservation | null,
): Prisma.Sql {
  const token = reservation?.token ?? null;
  const lockedUntil = reservation?.lockedUntil ?? null;
  return Prisma.sql`
    INSERT INTO "Job" (key, kind, "targetId", "runAt", "lockedBy", "lockedUntil", attempts)
    SELECT ${`${keyPrefix[kind]}:`} || t.id, ${kind}::"JobKind", t.id, ${runAt}::timestamp,
           ${token}::text, ${lockedUntil}::timestamp, CASE WHEN ${token}::text IS NULL THEN 0 ELSE 1 END
    FROM (${target}) AS t(id)
    ON CONFLICT (key) DO UPDATE SET
      "runAt" = CASE WHEN "Job"."lockedBy" IS NOT NULL AND NOT "Job".rerun THEN EXCLUDED."runAt"
                     ELSE LEAST("Job"."runAt", EXCLUDED."runAt") END,
      rerun = "Job"."lockedBy" IS NOT NULL,
      attempts = CASE WHEN "Job"."lockedBy" IS NULL AND EXCLUDED."lockedBy" IS NOT NULL
                      THEN "Job".attempts + 1 ELSE "Job".attempts END,
      "lockedUntil" = CASE WHEN "Job"."lockedBy" IS NULL THEN EXCLUDED."lockedUntil" ELSE "Job"."lockedUntil" END,
      "lockedBy" = COALESCE("Job"."lockedBy", EXCLUDED."lockedBy")
    RETURNING id, key, "runAt", attempts, COALESCE("lockedBy" = ${token}::text, false) AS mine`;
}

/**
 * What upsertJobSql returned, handed to the reservation: run it here (carrying `carried`), or
 * give the slot back. False: not run here, and `carried` is the caller's to publish.
 */
export function startOrCancel(
  reservation: Reservation | null,
  kind: JobKind,
  targetId: number,
  row: { id: bigint; key: string; runAt: Date; attempts: number; mine: boolean } | undefined,
  carried?: Carried,
): boolean {
  if (!reservation) return false;
  if (!row?.mine) {
    reservation.cancel();
    return false;
  }
  reservation.start(
    { id: row.id, key: row.key, kind, targetId, runAt: row.runAt, attempts: Number(row.attempts) },
    carried,
  );
  return true;
}

/**
 * The transaction's last statement: writes its job requests, in key order, so that the job rows
 * stay locked only until commit and two transactions touching the same jobs lock them in the same
 * order, never in a cycle. Several requests collapse into the earliest time; a request made while
 * the job runs marks it to run once more afterwards (`rerun`), at the earliest time asked for
 * during the run.
 *
 * When the transaction runs as a job (`ctx.claim`), a request for that same job is not written:
 * the row is this worker's until the handler returns, and its completion then keeps it with this
 * time instead of deleting it (one statement instead of an upsert that marks it to run again, a
 * failed delete and an update). The completion stays outside the transaction on purpose: a job row
 * released by the commit could be claimed by another process before this handler has returned,
 * and one object's update must never be seen running twice at once.
 */
export async function writeScheduledJobs(ctx: TxContext): Promise<void> {
  const claim = ctx.claim;
  const own = claim ? ctx.jobs.get(claim.job.key) : undefined;
  if (claim && own) {
    ctx.jobs.delete(claim.job.key);
    ctx.onCommit?.push(() => {
      if (!claim.rescheduleAt || own.runAt < claim.rescheduleAt) claim.rescheduleAt = own.runAt;
    });
  }
  if (ctx.jobs.size === 0) return;
  const entries = [...ctx.jobs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  await ctx.tx.$executeRaw`
    INSERT INTO "Job" (key, kind, "targetId", "runAt")
    SELECT k, c::"JobKind", t, r::timestamp
    FROM unnest(${entries.map(([key]) => key)}::text[], ${entries.map(([, job]) => job.kind)}::text[],
                ${entries.map(([, job]) => job.targetId)}::int[],
                ${entries.map(([, job]) => job.runAt.toISOString())}::text[]) WITH ORDINALITY AS j(k, c, t, r, n)
    ORDER BY n
    ON CONFLICT (key) DO UPDATE SET
      "runAt" = CASE WHEN "Job"."lockedBy" IS NOT NULL AND NOT "Job".rerun THEN EXCLUDED."runAt"
                     ELSE LEAST("Job"."runAt", EXCLUDED."runAt") END,
      rerun = "Job"."lockedBy" IS NOT NULL`;
  for (const [, job] of entries) ctx.after.jobScheduled(job.runAt);
  ctx.jobs.clear();
}
