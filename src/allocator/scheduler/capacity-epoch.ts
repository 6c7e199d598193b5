import type { Lease } from '../../generated/prisma/client.js';

/**
 * A lease nothing can serve is tried again by every pass of its type, and such a try is the
 * dearest part of a pass: the pool's view, the blueprints' lookups, a build's limit units, the
 * reclaim look, and on a large pool a read of every resource. When its wait is patient (only
 * freed capacity can end it: waiting.ts), trying it again is useless until some capacity of the
 * type may have freed. The pass knows that from its type's capacity epoch:
 *
 * - a transaction that may free capacity asks for the pass with `capacity` (jobs.ts), which
 *   writes its own transaction id into the pass job's `capacityMark`, a value no other
 *   transaction writes;
 * - the pass, holding its type's turn, moves the queue's epoch on when the job's mark is not the
 *   one the epoch last moved on for (takeTurn), or when the epoch is older than the allocator's
 *   idle retry (the safety net patient waits always had);
 * - a patient wait records the epoch it was found in (waitAndRetry); a pass in the same epoch
 *   takes it as refused again without trying it.
 *
 * Why nothing is missed: the pass reads the mark after the changes it stands for committed, so
 * every read of the pool after it sees them. A change committed later writes its own mark, and
 * its request for a pass either marks the running pass to run again or makes the job due: the
 * next pass sees a mark other than the one this one moved on for. Marks are transaction ids, so
 * a job row deleted and written again cannot bring back a mark the queue has already seen.
 */

/**
 * Whether `lease` waits patiently since the pass's current epoch: trying it again would fail the
 * same way. Not once the time its wait recorded as `until` has come (see waitAndRetry): what
 * time frees, no mark announces.
 */
export function waitsUnchanged(lease: Lease, epoch: number, now: Date): boolean {
  const blocker = lease.blocker as { epoch?: unknown } | null;
  if (lease.gangId !== null || blocker === null || typeof blocker !== 'object' || blocker.epoch !== epoch) return false;
  const until = waitEndsAt(lease);
  return until === null || until > now.getTime();
}

/** The time (ms) a patient wait of `lease` recorded as ending on its own, if any. */
export function waitEndsAt(lease: Lease): number | null {
  const until = (lease.blocker as { until?: unknown } | null)?.until;
  return typeof until === 'number' ? until : null;
}
