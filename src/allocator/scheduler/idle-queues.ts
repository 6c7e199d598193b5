import type { Database } from '../../db/database.js';
import { rawQueries } from '../../db/raw-sql.js';

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
export class IdleQueues {
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

/** Whether any lease of the queue's type is PENDING, read outside any transaction. */
export async function anyWaiting(db: Database, queueId: number): Promise<boolean> {
  const [row] = await (
    await rawQueries(db)
  ).$queryRaw<{ waiting: boolean }[]>`
    SELECT EXISTS (
      SELECT 1 FROM "ResourceTypeQueue" q JOIN "Lease" l ON l."resourceType" = q."resourceType"
      WHERE q.id = ${queueId} AND l.status = 'PENDING') AS waiting`;
  return row?.waiting ?? true;
}
