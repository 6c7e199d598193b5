import type { JobKind } from '../generated/prisma/client.js';
import type { TxContext } from '../allocator/context.js';

// Scheduling is part of the caller's transaction: the job exists exactly when the change that
// asked for it committed. One row per object (`key`) dedupes requests.

export function jobKey(kind: JobKind, targetId: number): string {
  return kind === 'LEASE_UPDATE' ? `lease:${targetId}` : `resource:${targetId}`;
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

/**
 * Writes the transaction's job requests in one statement, in key order, as its last step: the
 * job rows stay locked only until commit, and two transactions touching the same jobs lock them in
 * the same order, so they cannot deadlock on each other.
 *
 * Several requests collapse into the earliest time; a request made while the job runs marks it to
 * run once more afterwards (`rerun`), at the earliest time asked for during the run.
 */
export async function writeScheduledJobs(ctx: TxContext): Promise<void> {
  if (ctx.jobs.size === 0) return;
  const entries = [...ctx.jobs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const keys = entries.map(([key]) => key);
  const kinds = entries.map(([, job]) => job.kind);
  const targets = entries.map(([, job]) => job.targetId);
  const runAts = entries.map(([, job]) => job.runAt.toISOString());
  await ctx.tx.$executeRaw`
    INSERT INTO "Job" (key, kind, "targetId", "runAt")
    SELECT k, c::"JobKind", t, r::timestamp
    FROM unnest(${keys}::text[], ${kinds}::text[], ${targets}::int[], ${runAts}::text[]) WITH ORDINALITY AS j(k, c, t, r, n)
    ORDER BY n
    ON CONFLICT (key) DO UPDATE SET
      "runAt" = CASE WHEN "Job"."lockedBy" IS NOT NULL AND NOT "Job".rerun THEN EXCLUDED."runAt"
                     ELSE LEAST("Job"."runAt", EXCLUDED."runAt") END,
      rerun = "Job"."lockedBy" IS NOT NULL`;
  for (const [, job] of entries) ctx.after.jobScheduled(job.runAt);
  ctx.jobs.clear();
}
