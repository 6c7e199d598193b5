import type { ClaimedJob } from './store.js';

// What the allocator is given of the job queue: it writes job rows in its own transactions
// (allocator/jobs.ts), wakes the worker after commit, and may hand new work straight to an idle
// worker slot of this process. Handlers get their claim as an argument, never through a variable.

export interface QueuePort {
  /** A job is due at `runAt`: this process's worker (and other processes, if told) looks by then. */
  wake(runAt: Date): void;
  /**
   * A slot of this process's worker for a job about to be inserted already claimed (null: none
   * free). Work inserted so is run at once, with no claim statement and no wake-up round trip.
   */
  reserve(): Reservation | null;
}

/**
 * What the caller that created a job (a lease request) has not published yet: it goes out with
 * the job's first commit, so that subscribers get one event for both and read the object's rows
 * once, not twice a few milliseconds apart. A job that commits nothing soon publishes it anyway.
 */
export interface Carried {
  flush(): void;
}
/** A job this process holds while its handler runs. */
export interface JobClaim {
  readonly job: ClaimedJob;
  /** See Carried; taken (with takeCarried) by whoever publishes it. */
  carried: Carried | null;
  /**
   * A committed transaction of the handler asked for this job again at this time: the worker's
   * completion keeps the row and sets it to this time (see ../queue/jobs.ts). Once the handler has
   * completed the job itself (completedAt), the time it left the row due at, if it kept it.
   */
  rescheduleAt: Date | null;
  /**
   * The handler completed the job itself, in a statement of its own work (removed its row, or
   * released it for a later time): no completion is due, and the claim ended there, though the
   * handler may still be running what its commit set off. The time (performance.now()) is when
   * that statement was sent: all of the run's work on the job came before it, and another process
   * can claim the job only once it has committed, so it is the one instant both bounds hold from
   * this process's clock (the commit's answer comes back later, by however long this process waits
   * for its turn on a busy machine).
   */
  completedAt?: number;
  /**
   * The handler's last transaction found the job asked for again while it ran, and kept it claimed
   * (see continueRerunJobSql): the worker runs it again at once, with no completion and no claim.
   */
  again?: boolean;
  /** This run is such a run again: it was asked for while the one before it ran. */
  continues?: boolean;
}

export function takeCarried(claim: JobClaim): Carried | null {
  const carried = claim.carried;
  claim.carried = null;
  return carried;
}

/** A worker slot held for a job the caller is about to insert already claimed (see reserve()). */
export interface Reservation {
  /** Claim token to write into the job row. */
  readonly token: string;
  readonly lockedUntil: Date;
  /** The row was written with this claim: run it now, in this process, carrying `carried`. */
  start(job: Omit<ClaimedJob, 'token'>, carried?: Carried): void;
  /** The row was not claimed after all (or the statement failed): give the slot back. */
  cancel(): void;
}
