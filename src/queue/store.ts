import type { Database } from '../db/database.js';
import type { JobKind } from '../generated/prisma/client.js';

export interface ClaimedJob {
  id: bigint;
  key: string;
  kind: JobKind;
  targetId: number;
  runAt: Date;
  /** How many times this job has been claimed since it last succeeded (1 on a first run). */
  attempts: number;
  /** Identifies this claim: completing or failing a job is a no-op once the claim was lost. */
  token: string;
}

/**
 * Claims up to `limit` due jobs for `token`. A job is due when unclaimed and its time has come, or
 * when its claim has expired (its process died or hung): that job is simply run again. SKIP LOCKED
 * lets any number of processes claim at once without taking the same row twice.
 */
export async function claimJobs(
  db: Database,
  token: string,
  limit: number,
  claimTtlMs: number,
  now: Date,
): Promise<ClaimedJob[]> {
  const lockedUntil = new Date(now.getTime() + claimTtlMs);
  const rows = await db.prisma.$queryRaw<Omit<ClaimedJob, 'token'>[]>`
    UPDATE "Job" SET "lockedBy" = ${token}, "lockedUntil" = ${lockedUntil}::timestamp, rerun = false, attempts = attempts + 1
    WHERE id IN (
      SELECT id FROM "Job"
      WHERE ("lockedBy" IS NULL AND "runAt" <= ${now}::timestamp) OR "lockedUntil" < ${now}::timestamp
      ORDER BY "runAt", id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING id, key, kind, "targetId", "runAt", attempts`;
  return rows.map((row) => ({ ...row, attempts: Number(row.attempts), token }));
}

/** Done: the row goes, unless the job was scheduled again while it ran; then it waits for its new time. */
export async function completeJob(db: Database, job: ClaimedJob): Promise<void> {
  await db.prisma.$executeRaw`DELETE FROM "Job" WHERE id = ${job.id} AND "lockedBy" = ${job.token} AND NOT rerun`;
  await db.prisma.$executeRaw`
    UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, rerun = false, attempts = 0, "lastError" = NULL
    WHERE id = ${job.id} AND "lockedBy" = ${job.token}`;
}

/** Failed unexpectedly (database trouble, a bug): try again at `retryAt` or earlier if asked meanwhile. */
export async function failJob(db: Database, job: ClaimedJob, error: string, retryAt: Date): Promise<void> {
  await db.prisma.$executeRaw`
    UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, "lastError" = ${error.slice(0, 2000)},
      "runAt" = CASE WHEN rerun THEN LEAST("runAt", ${retryAt}::timestamp) ELSE ${retryAt}::timestamp END, rerun = false
    WHERE id = ${job.id} AND "lockedBy" = ${job.token}`;
}

/** Keeps a long-running job's claim alive. Returns false once the claim was lost. */
export async function extendClaim(db: Database, job: ClaimedJob, claimTtlMs: number, now: Date): Promise<boolean> {
  const lockedUntil = new Date(now.getTime() + claimTtlMs);
  const count = await db.prisma.$executeRaw`
    UPDATE "Job" SET "lockedUntil" = ${lockedUntil}::timestamp WHERE id = ${job.id} AND "lockedBy" = ${job.token}`;
  return count > 0;
}

/** When the next unclaimed job falls due, for the worker's timer. */
export async function nextDueAt(db: Database): Promise<Date | null> {
  const rows = await db.prisma.$queryRaw<
    { at: Date | null }[]
  >`SELECT min("runAt") AS at FROM "Job" WHERE "lockedBy" IS NULL`;
  return rows[0]?.at ?? null;
}
