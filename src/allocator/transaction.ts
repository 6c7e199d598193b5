import type { Prisma } from '../generated/prisma/client.js';
import { rawTransaction } from '../db/raw-sql.js';
import { takeCarried, type JobClaim } from '../queue/port.js';
import { AfterCommit, CarriedCommit, type AllocatorDeps, type Tx, type TxContext } from './context.js';
import { retryingDeadlocks } from './deadlocks.js';
import { writeScheduledJobs } from './jobs.js';

// The allocator's transactions: the work of one, the jobs it asked for written as its last
// statement, and its events published only once it has committed.

/**
 * Runs `fn` in one interactive transaction of the Prisma client and, only once it has committed,
 * publishes its events and wakes the worker. A throw rolls everything back and publishes nothing;
 * outside a job, a run PostgreSQL failed as a deadlock's victim runs again (deadlocks.ts).
 */
export async function inTransaction<T>(
  deps: AllocatorDeps,
  fn: (ctx: TxContext<Prisma.TransactionClient>) => Promise<T>,
  claim?: JobClaim,
): Promise<T> {
  return run(deps, claim, fn, (body) =>
    deps.db.prisma.$transaction(body, {
      timeout: deps.options.transactionTimeoutMs,
      maxWait: deps.options.transactionTimeoutMs,
    }),
  );
}

/**
 * The same for the allocator's updates, which need raw statements only: they go to each
 * database's own driver, plain pg or PGlite's wire protocol (see ../db/statements.ts for why).
 */
export async function inUpdateTransaction<T>(
  deps: AllocatorDeps,
  fn: (ctx: TxContext) => Promise<T>,
  claim?: JobClaim,
): Promise<T> {
  return run(deps, claim, fn, (body) => rawTransaction(deps.db, deps.options.transactionTimeoutMs, body));
}

function run<T, X extends Tx>(
  deps: AllocatorDeps,
  claim: JobClaim | undefined,
  fn: (ctx: TxContext<X>) => Promise<T>,
  transaction: (body: (tx: X) => Promise<T>) => Promise<T>,
): Promise<T> {
  // Each run starts afresh: what a rolled-back run collected to do after commit is dropped with it.
  return claim
    ? runOnce(deps, claim, fn, transaction)
    : retryingDeadlocks(deps, 'transaction', () => runOnce(deps, claim, fn, transaction));
}

async function runOnce<T, X extends Tx>(
  deps: AllocatorDeps,
  claim: JobClaim | undefined,
  fn: (ctx: TxContext<X>) => Promise<T>,
  transaction: (body: (tx: X) => Promise<T>) => Promise<T>,
): Promise<T> {
  const after = new AfterCommit();
  const onCommit: (() => void)[] = [];
  const onRollback: (() => void)[] = [];
  let result: T;
  try {
    result = await transaction(async (tx) => {
      const ctx: TxContext<X> = {
        tx,
        after,
        now: deps.options.clock(),
        deps,
        jobs: new Map(),
        passes: new Map(),
        claim,
        onCommit,
        onRollback,
        unanswered: [],
      };
      const value = await fn(ctx);
      try {
        await writeScheduledJobs(ctx);
      } finally {
        // A statement sent unanswered that failed is what failed: the ones after it only found
        // the transaction aborted.
        for (const sent of ctx.unanswered ?? []) await sent.answer;
      }
      return value;
    });
  } catch (error) {
    for (const undo of onRollback) undo();
    throw error;
  }
  for (const done of onCommit) done();
  const carried = claim ? takeCarried(claim) : null;
  if (carried instanceof CarriedCommit) after.absorb(carried.after);
  else carried?.flush();
  after.flush(deps);
  return result;
}
