import { Prisma, type JobKind } from '../generated/prisma/client.js';
import type { Carried, Reservation } from './port.js';

// Scheduling is part of the caller's transaction: the job exists exactly when the change that
// asked for it committed. One row per object (`key`) dedupes requests.

const keyPrefix: Record<JobKind, string> = {
  LEASE_UPDATE: 'lease',
  RESOURCE_UPDATE: 'resource',
  BLUEPRINT_MAINTENANCE: 'blueprint',
  SCHEDULING_PASS: 'pass',
  WARM_POOL: 'warm',
};

export function jobKey(kind: JobKind, targetId: number): string {
  return `${keyPrefix[kind]}:${targetId}`;
}

/**
 * What writing a job that exists already does to it: a job running now is marked to run again
 * (at the time asked for if it was not marked yet), one not running takes the earlier time, and
 * a claim written with the row (a reserved worker slot) takes it only if nobody holds it. A
 * scheduling pass's capacity mark is the latest writer's that set one (jobs.ts, schedulePass).
 */
export const upsertConflictSql = Prisma.sql`ON CONFLICT (key) DO UPDATE SET
      "runAt" = CASE WHEN "Job"."lockedBy" IS NOT NULL AND NOT "Job".rerun THEN EXCLUDED."runAt"
                     ELSE LEAST("Job"."runAt", EXCLUDED."runAt") END,
      rerun = "Job"."lockedBy" IS NOT NULL,
      "capacityMark" = COALESCE(EXCLUDED."capacityMark", "Job"."capacityMark"),
      attempts = CASE WHEN "Job"."lockedBy" IS NULL AND EXCLUDED."lockedBy" IS NOT NULL
                      THEN "Job".attempts + 1 ELSE "Job".attempts END,
      "lockedUntil" = CASE WHEN "Job"."lockedBy" IS NULL THEN EXCLUDED."lockedUntil" ELSE "Job"."lockedUntil" END,
      "lockedBy" = COALESCE("Job"."lockedBy", EXCLUDED."lockedBy")`;

/**
 * Removes a job whose work is done, as a statement for a WITH clause (RETURNING id), unless it was
 * asked for again while it ran (`rerun`): then the worker's completion makes it due again. Also
 * only while `when` holds; no job (null) removes nothing.
 */
export function deleteFinishedJobSql(
  job: { id: bigint; token: string } | null,
  when: Prisma.Sql = Prisma.sql`true`,
): Prisma.Sql {
  return Prisma.sql`
    DELETE FROM "Job" WHERE id = ${job?.id.toString() ?? null}::bigint AND "lockedBy" = ${job?.token ?? null}::text
      AND NOT rerun AND ${when}
    RETURNING id`;
}

/**
 * Whether a job whose work is done is due again at once: asked for while it ran (`rerun`) for a
 * time that has come, or `again`, a reason of the ending transaction's own (it asked for its own
 * job now).
 */
const dueAgainSql = (now: Date, again: Prisma.Sql) =>
  Prisma.sql`((rerun AND "runAt" <= ${now}::timestamp) OR ${again})`;

/**
 * Marks a job its holder still runs to run again when `when` holds, as a statement for a WITH
 * clause: the mark a request made meanwhile leaves (upsertConflictSql), which the job's completion
 * reads as any other (continueRerunJobSql, releaseJobSql).
 */
export function askAgainJobSql(job: { id: bigint; token: string } | null, when: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    UPDATE "Job" SET rerun = true
    WHERE id = ${job?.id.toString() ?? null}::bigint AND "lockedBy" = ${job?.token ?? null}::text AND ${when}`;
}

/**
 * Keeps a job whose work is done claimed, as a statement for a WITH clause (RETURNING id), when it
 * is due again at once (dueAgainSql): its worker runs it again with the same claim
 * (JobClaim.again). That is what the worker's completion and next claim would do a few round
 * trips later, with a window in which another process could claim it, which is the only
 * difference. Never matches the row deleteFinishedJobSql or releaseJobSql changes (those need it
 * not due again).
 */
export function continueRerunJobSql(
  job: { id: bigint; token: string } | null,
  now: Date,
  again: Prisma.Sql = Prisma.sql`false`,
): Prisma.Sql {
  return Prisma.sql`
    UPDATE "Job" SET rerun = false
    WHERE id = ${job?.id.toString() ?? null}::bigint AND "lockedBy" = ${job?.token ?? null}::text
      AND ${dueAgainSql(now, again)}
    RETURNING id`;
}

/**
 * Ends the claim of a job whose work is done but which is wanted again later, as a statement for
 * a WITH clause (RETURNING id and the time it is due): asked for while it ran for a later time,
 * or asked for by its own transaction at `at`; the earlier of the two wins. What the worker's
 * completion (completeJob) does, in the ending transaction's own statement. Not when it is due
 * again at once (continueRerunJobSql keeps it), nor when nothing wants it (deleteFinishedJobSql).
 */
export function releaseJobSql(
  job: { id: bigint; token: string } | null,
  now: Date,
  at: Date | null,
  again: Prisma.Sql = Prisma.sql`false`,
): Prisma.Sql {
  const wanted = at?.toISOString() ?? null;
  return Prisma.sql`
    UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, attempts = 0, "lastError" = NULL,
      "runAt" = LEAST(CASE WHEN rerun THEN "runAt" END, ${wanted}::timestamp), rerun = false
    WHERE id = ${job?.id.toString() ?? null}::bigint AND "lockedBy" = ${job?.token ?? null}::text
      AND (rerun OR ${wanted}::timestamp IS NOT NULL) AND NOT ${dueAgainSql(now, again)}
    RETURNING id, "runAt"`;
}

/**
 * The job of one object, due at `runAt`, as a statement for a WITH clause (RETURNING whether this
 * process now holds it), with the conflict rules of writeScheduledJobs. With a reservation, a job
 * nobody holds is written claimed by this process's worker, which runs it as soon as the
 * statement has committed (see reserveLocalSlot); one that is running elsewhere is marked to run
 * again, as any schedule does, and comes back `held`: its holder runs it again when it completes,
 * so nobody needs waking for it.
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
    ${upsertConflictSql}
    RETURNING id, key, "runAt", attempts, COALESCE("lockedBy" = ${token}::text, false) AS mine,
      "lockedBy" IS NOT NULL AND "lockedBy" IS DISTINCT FROM ${token}::text AS held`;
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
