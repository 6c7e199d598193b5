import type { Database } from '../db/database.js';
import { PendingEvents, type DomainEvent, type EventSink } from '../events/domain-events.js';
import type { JobKind, Lease } from '../generated/prisma/client.js';
import type { Carried, JobClaim, QueuePort } from '../queue/port.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import type { AllocatorOptions } from './options.js';
import type { RawQueries } from '../db/statements.js';
import type { RuntimeTools } from './runtime-tools.js';
import type { Demand } from './demand.js';
import type { KnownResourceRows } from './known-resource-rows.js';

/** What the allocator's statements run on: a transaction, raw statements only (see raw-sql.ts). */
export type Tx = RawQueries;

/**
 * What a transaction leaves to do once it has committed: events to publish and jobs to wake.
 * Nothing here may happen earlier, or a subscriber could see a state that was rolled back.
 */
export class AfterCommit {
  readonly events = new PendingEvents();
  private wakeAt: Date | undefined;

  publish(event: DomainEvent): void {
    this.events.add(event);
  }

  /** A job became due at `runAt`: the in-process worker should look no later than that. */
  jobScheduled(runAt: Date): void {
    if (!this.wakeAt || runAt < this.wakeAt) this.wakeAt = runAt;
  }

  flush(deps: AllocatorDeps): void {
    this.events.flush(deps.events);
    if (this.wakeAt) deps.queue.wake(this.wakeAt);
    this.wakeAt = undefined;
  }

  /** Takes on the work of `later`, a part of this transaction that is kept (see scheduler/plan.ts). */
  merge(later: AfterCommit): void {
    this.events.append(later.events);
    if (later.wakeAt) this.jobScheduled(later.wakeAt);
    later.wakeAt = undefined;
  }

  /** Publishes what `earlier` (committed before this) has not, together with this one's. */
  absorb(earlier: AfterCommit): void {
    this.events.takeFrom(earlier.events);
    if (earlier.wakeAt) this.jobScheduled(earlier.wakeAt);
    earlier.wakeAt = undefined;
  }
}

/** A committed request's after-commit work, carried by the job it started (see Carried). */
export class CarriedCommit implements Carried {
  constructor(
    readonly after: AfterCommit,
    private readonly deps: AllocatorDeps,
  ) {}

  flush(): void {
    this.after.flush(this.deps);
  }
}

/** Which queues' last pass in this process left no lease waiting (scheduler/idle-queues.ts). */
export interface IdleQueueHints {
  has(queueId: number): boolean;
  record(queueId: number, leftWaiting: boolean): void;
}

/** How long a request's pass waits while its type is busy (scheduler/pacing.ts). */
export interface PassPacer {
  delayMs(resourceType: string): number;
  ended(resourceType: string): void;
}

/** Everything the allocator needs from its surroundings; services build it once. */
export interface AllocatorDeps {
  db: Database;
  events: EventSink;
  registry: BlueprintRegistry;
  options: AllocatorOptions;
  /** The job queue: wake-ups after commit, and idle worker slots for work a request creates. */
  queue: QueuePort;
  /** Transports and command running for hooks outside transactions; none: every use fails clearly. */
  tools?: RuntimeTools;
  /** This process's hint of which types' queues are idle; none: no hint. */
  idleQueues?: IdleQueueHints;
  /** Delays the passes requests ask for while their type is busy; none: no pacing. */
  passPacing?: PassPacer;
  /**
   * The resource type of each queue row this process has taken the turn of (a row's type never
   * changes): a pass that knows it sends its heads' read together with the turn (scheduler/pass.ts).
   */
  queueTypes?: Map<number, string>;
  /**
   * Per queue row, the demand of the first lease that never waited which this process's last pass
   * of it granted: the next pass reads that demand's view of the pool with its heads, in the same
   * round trip (scheduler/pass.ts). None: every view is read when its lease is served.
   */
  passDemands?: Map<number, Demand>;
  /** The resource rows this process's views of the pool read, by version; none: every view sends every row. */
  knownResourceRows?: KnownResourceRows;
  /** Told of every scheduling pass that ran in this process (metrics); none: nobody listens. */
  passes?: PassObserver;
  /** Told of each caller's transaction run again after a deadlock (deadlocks.ts); none: nobody listens. */
  deadlocks?: DeadlockObserver;
}

/** A transaction PostgreSQL failed as a deadlock's victim, about to run again (`attempt` runs done). */
export interface DeadlockObserver {
  retried(retry: { what: string; attempt: number }): void;
}

/** What a scheduling pass that ran reports once it has committed. */
export interface PassObserver {
  /**
   * `seconds`: from the pass starting its transaction to its commit (waiting for a connection and
   * for the type's turn included); `granted`: leases (gang parts each) it made ACQUIRED or ACTIVE.
   */
  passed(pass: { resourceType: string; seconds: number; granted: number }): void;
}

/**
 * Grants a scheduling pass collects to write together (scheduler/write.ts) instead of one statement
 * each: only the common case, a lease on an ACTIVE resource that takes no slot lock and is active
 * at once. `plan` returns the lease as it will be once written.
 */
export interface GrantBatch {
  plan(ctx: TxContext, lease: Lease, resourceId: number): Lease;
  /** Writes what was planned: before anything reads the pool's load from the database again. */
  flush(ctx: TxContext): Promise<void>;
}

/** A job a transaction asked for; written just before it commits (see ../queue/jobs.ts). */
/** A scheduling pass asked for (see jobs.ts, schedulePass). */
export interface PassRequest {
  runAt: Date;
  /** Capacity of the type may have freed: the pass's capacity epoch moves on. */
  capacity: boolean;
}

export interface JobRequest {
  kind: JobKind;
  targetId: number;
  runAt: Date;
}

/**
 * One transaction's view: the transaction, its after-commit work, and the time it runs at. The
 * allocator needs raw statements only (`Tx`); services that write through the Prisma client get
 * its transaction (inTransaction).
 */
export interface TxContext<T extends Tx = Tx> {
  tx: T;
  after: AfterCommit;
  now: Date;
  deps: AllocatorDeps;
  /** Jobs to schedule at the end of the transaction, by job key (earliest time wins). */
  jobs: Map<string, JobRequest>;
  /** Scheduling passes to ask for at the end of the transaction, by resource type (see jobs.ts). */
  passes: Map<string, PassRequest>;
  /**
   * Set by a scheduling pass: its type and the capacity epoch it runs in, which a patient wait it
   * records carries (see scheduler/capacity-epoch.ts).
   */
  capacityEpoch?: { resourceType: string; epoch: number } | undefined;
  /**
   * The queue job this transaction runs as: a request for that job itself becomes the time its
   * completion leaves it due again (see ../queue/jobs.ts). A transaction after which more of the
   * job's work follows clears it, so that such a request marks the job to run again as usual.
   */
  claim?: JobClaim | undefined;
  /**
   * Set by a handler whose job ends with this transaction (nothing of it runs after the commit):
   * the job's row is deleted in the transaction's last statement (see ./jobs.ts), not by the
   * worker a round trip later.
   */
  endsJob?: boolean;
  /** Bookkeeping that is true only once the transaction has committed. */
  onCommit?: (() => void)[];
  /** What to undo if the transaction does not commit (a worker slot reserved for its job). */
  onRollback?: (() => void)[];
  /** Set by a scheduling pass: its plain grants, written together (see GrantBatch). */
  grants?: GrantBatch | undefined;
  /**
   * Statements sent without waiting for their answers, so that they reach the database with the
   * transaction's last statement (a pass's last grant write, see PassGrants.finish); the
   * transaction waits for each answer before it ends.
   */
  unanswered?: { answer: Promise<void> }[];
}
