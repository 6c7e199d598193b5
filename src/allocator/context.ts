import type { Database } from '../db/database.js';
import { PendingEvents, type DomainEvent, type EventSink } from '../events/domain-events.js';
import type { JobKind, Prisma } from '../generated/prisma/client.js';
import { writeScheduledJobs } from '../queue/jobs.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import type { AllocatorOptions } from './options.js';

export type Tx = Prisma.TransactionClient;

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
    if (this.wakeAt) deps.wake(this.wakeAt);
    this.wakeAt = undefined;
  }
}

/** Everything the allocator needs from its surroundings; services build it once. */
export interface AllocatorDeps {
  db: Database;
  events: EventSink;
  registry: BlueprintRegistry;
  options: AllocatorOptions;
  /** Tells the queue worker of this process that a job is due at `runAt` (its notify hook). */
  wake(runAt: Date): void;
}

/** A job a transaction asked for; written just before it commits (see ../queue/jobs.ts). */
export interface JobRequest {
  kind: JobKind;
  targetId: number;
  runAt: Date;
}

/** One transaction's view: the transaction, its after-commit work, and the time it runs at. */
export interface TxContext {
  tx: Tx;
  after: AfterCommit;
  now: Date;
  deps: AllocatorDeps;
  /** Jobs to schedule at the end of the transaction, by job key (earliest time wins). */
  jobs: Map<string, JobRequest>;
}

/**
 * Runs `fn` in one interactive transaction and, only once it has committed, publishes its events
 * and wakes the worker. A throw rolls everything back and publishes nothing.
 */
export async function inTransaction<T>(deps: AllocatorDeps, fn: (ctx: TxContext) => Promise<T>): Promise<T> {
  const after = new AfterCommit();
  const result = await deps.db.prisma.$transaction(
    async (tx) => {
      const ctx: TxContext = { tx, after, now: deps.options.clock(), deps, jobs: new Map() };
      const value = await fn(ctx);
      await writeScheduledJobs(ctx);
      return value;
    },
    { timeout: deps.options.transactionTimeoutMs, maxWait: deps.options.transactionTimeoutMs },
  );
  after.flush(deps);
  return result;
}
