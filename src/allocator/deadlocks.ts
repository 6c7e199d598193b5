import { setTimeout as sleep } from 'node:timers/promises';
import { errorChain } from '../db/error-chain.js';
import type { AllocatorDeps } from './context.js';

/**
 * How many times a caller's transaction is run in all when PostgreSQL keeps choosing it as a
 * deadlock's victim. Each deadlock needs another transaction locking rows in the opposite order at
 * the same moment, so a second run almost always goes through; a third is margin.
 */
export const DEADLOCK_ATTEMPTS = 3;

/**
 * PostgreSQL's `deadlock detected` (40P01), as plain pg and PGlite raise it, or as Prisma wraps it:
 * P2034 from its own statements (which it also gives for a serialization failure, 40001: at READ
 * COMMITTED, which every transaction here runs at, only a deadlock raises it), P2010 from a raw
 * one, with the driver adapter's error, which has the database's code, inside (errorChain).
 */
export function isDeadlock(error: unknown): boolean {
  for (const { code, originalCode } of errorChain(error))
    if (code === '40P01' || code === 'P2034' || originalCode === '40P01') return true;
  return false;
}

/**
 * Runs `attempt` again when PostgreSQL failed it as the victim of a deadlock: its transaction was
 * rolled back whole, so running it again is what the caller would do, and a user's request should
 * not fail because of how another transaction took its locks. The allocator's statements take
 * their rows' locks in id order so that this should not happen; a retry is reported (`deadlocks`)
 * so that one that does is seen. Only for callers without a job claim: a job's failure is retried
 * by the queue, with the claim's own rules.
 */
export async function retryingDeadlocks<T>(deps: AllocatorDeps, what: string, attempt: () => Promise<T>): Promise<T> {
  for (let run = 1; ; run++) {
    try {
      return await attempt();
    } catch (error) {
      if (run >= DEADLOCK_ATTEMPTS || !isDeadlock(error)) throw error;
      deps.deadlocks?.retried({ what, attempt: run });
      // A short, random pause: the other transaction, which won, finishes meanwhile.
      await sleep(5 + Math.random() * 20 * run);
    }
  }
}
