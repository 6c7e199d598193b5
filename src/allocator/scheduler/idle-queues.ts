import type { Database } from '../../db/database.js';
import { rawQueries } from '../../db/raw-sql.js';
import { Prisma } from '../../generated/prisma/client.js';
import { deleteFinishedJobSql } from '../../queue/jobs.js';
import type { JobClaim } from '../../queue/port.js';
import type { IdleQueueHints } from '../context.js';

/**
 * The queues whose last pass in this process left no lease waiting. Most passes asked for while
 * a queue is idle come from freed capacity (a release, a destroyed resource) with nothing waiting
 * for it; such a pass first looks whether any lease waits, in one statement and without the
 * type's turn, instead of a transaction that takes the turn to find nothing.
 *
 * The look is enough on its own: a lease that starts waiting after it (a request, a reacquire)
 * is made so by a transaction that asks for a pass of its own, and that pass runs after it
 * commits. This set only says when looking first is likely to save work, so it is kept per
 * process and never shared.
 */
export class IdleQueues implements IdleQueueHints {
  private readonly ids = new Set<number>();

  has(queueId: number): boolean {
    return this.ids.has(queueId);
  }

  /** What the pass that just committed left: some lease waiting, or none. */
  record(queueId: number, leftWaiting: boolean): void {
    if (leftWaiting) this.ids.delete(queueId);
    else this.ids.add(queueId);
  }
}

/**
 * Whether any lease of the queue's type is PENDING, read outside any transaction; when none is,
 * the pass's job is completed in the same statement (its row deleted, unless it was asked for
 * again while it ran), so that a pass with nothing to do costs one statement. A lease that starts
 * waiting after this statement's snapshot was made so by a transaction that asked for a pass:
 * either its job row is new (this one is gone) or it marked this one to run again (then the row
 * stays, and the worker's completion makes it due).
 */
export async function nothingWaiting(db: Database, queueId: number, claim: JobClaim | undefined): Promise<boolean> {
  const sentAt = performance.now();
  const [row] = await (
    await rawQueries(db)
  ).$queryRaw<{ waiting: boolean; done: boolean }[]>`
    WITH w AS (
      SELECT EXISTS (
        SELECT 1 FROM "ResourceTypeQueue" q JOIN "Lease" l ON l."resourceType" = q."resourceType"
        WHERE q.id = ${queueId} AND l.status = 'PENDING') AS waiting),
    d AS (${deleteFinishedJobSql(claim?.job ?? null, Prisma.sql`NOT (SELECT waiting FROM w)`)})
    SELECT (SELECT waiting FROM w) AS waiting, EXISTS (SELECT 1 FROM d) AS done`;
  if (!row || row.waiting) return false;
  if (row.done && claim) claim.completedAt = sentAt;
  return true;
}
