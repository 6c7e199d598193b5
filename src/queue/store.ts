import type { Database } from '../db/database.js';
import { bookkeeping } from './bookkeeping.js';
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

// Timestamps go in as ISO text cast to the columns' type (UTC wall time, as Prisma writes them)
// and come out as timestamptz, which both drivers turn into a Date; ids come out as text.
const at = (date: Date) => date.toISOString();
const job = (row: Record<string, unknown>, token: string): ClaimedJob => ({
  id: BigInt(row['id'] as string),
  key: row['key'] as string,
  kind: row['kind'] as JobKind,
  targetId: Number(row['targetId']),
  runAt: new Date(row['runAt'] as Date),
  attempts: Number(row['attempts']),
  token,
});
const runAtOf = (rows: Record<string, unknown>[]) => (rows[0] ? new Date(rows[0]['runAt'] as Date) : null);
const returning = `RETURNING id::text AS id, key, kind::text AS kind, "targetId", "runAt" AT TIME ZONE 'UTC' AS "runAt", attempts`;

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
  const rows = await bookkeeping(db).query(
    `UPDATE "Job" SET "lockedBy" = $1, "lockedUntil" = $2::timestamp, rerun = false, attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM "Job"
       WHERE ("lockedBy" IS NULL AND "runAt" <= $3::timestamp) OR "lockedUntil" < $3::timestamp
       ORDER BY "runAt", id
       LIMIT $4
       FOR UPDATE SKIP LOCKED)
     ${returning}`,
    [token, at(lockedUntil), at(now), limit],
  );
  return rows.map((row) => job(row, token));
}

/**
 * Done: the row goes, unless the job was scheduled again while it ran (or `rescheduleAt` asks for
 * it again); then it waits for its new time, which is returned so that the caller can look again
 * then. The delete is tried first: it is what nearly every completion does, and then it is the
 * only statement.
 */
export async function completeJob(
  db: Database,
  job: ClaimedJob,
  rescheduleAt: Date | null = null,
): Promise<Date | null> {
  const sql = bookkeeping(db);
  if (rescheduleAt) {
    return runAtOf(
      await sql.query(
        `UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, attempts = 0, "lastError" = NULL,
           "runAt" = CASE WHEN rerun THEN LEAST("runAt", $3::timestamp) ELSE $3::timestamp END, rerun = false
         WHERE id = $1::bigint AND "lockedBy" = $2
         RETURNING "runAt" AT TIME ZONE 'UTC' AS "runAt"`,
        [job.id.toString(), job.token, at(rescheduleAt)],
      ),
    );
  }
  const deleted = await sql.query(
    `DELETE FROM "Job" WHERE id = $1::bigint AND "lockedBy" = $2 AND NOT rerun RETURNING id::text AS id`,
    [job.id.toString(), job.token],
  );
  if (deleted.length > 0) return null;
  return runAtOf(
    await sql.query(
      `UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, rerun = false, attempts = 0, "lastError" = NULL
       WHERE id = $1::bigint AND "lockedBy" = $2
       RETURNING "runAt" AT TIME ZONE 'UTC' AS "runAt"`,
      [job.id.toString(), job.token],
    ),
  );
}

/**
 * Failed unexpectedly (database trouble, a bug): try again at `retryAt` or earlier if asked
 * meanwhile. Returns when the job is due again (null once the claim was lost).
 */
export async function failJob(db: Database, job: ClaimedJob, error: string, retryAt: Date): Promise<Date | null> {
  return runAtOf(
    await bookkeeping(db).query(
      `UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, "lastError" = $3,
         "runAt" = CASE WHEN rerun THEN LEAST("runAt", $4::timestamp) ELSE $4::timestamp END, rerun = false
       WHERE id = $1::bigint AND "lockedBy" = $2
       RETURNING "runAt" AT TIME ZONE 'UTC' AS "runAt"`,
      [job.id.toString(), job.token, error.slice(0, 2000), at(retryAt)],
    ),
  );
}

/** Keeps a long-running job's claim alive. Returns false once the claim was lost. */
export async function extendClaim(db: Database, job: ClaimedJob, claimTtlMs: number, now: Date): Promise<boolean> {
  const lockedUntil = new Date(now.getTime() + claimTtlMs);
  const rows = await bookkeeping(db).query(
    `UPDATE "Job" SET "lockedUntil" = $3::timestamp WHERE id = $1::bigint AND "lockedBy" = $2 RETURNING id::text AS id`,
    [job.id.toString(), job.token, at(lockedUntil)],
  );
  return rows.length > 0;
}

/** When the next unclaimed job falls due, for the worker's timer. */
export async function nextDueAt(db: Database): Promise<Date | null> {
  const rows = await bookkeeping(db).query(
    `SELECT min("runAt") AT TIME ZONE 'UTC' AS "runAt" FROM "Job" WHERE "lockedBy" IS NULL`,
    [],
  );
  return rows[0]?.['runAt'] ? new Date(rows[0]['runAt'] as Date) : null;
}
