import type { Lease, Prisma } from '../generated/prisma/client.js';
import { scheduleLeaseUpdate } from '../queue/jobs.js';
import { backoffDelayMs } from './backoff.js';
import type { TxContext } from './context.js';
import { logLease } from './transitions.js';

export interface Blocker {
  reason: string;
  [detail: string]: unknown;
}

/**
 * The lease cannot make progress now: record why, and retry later. A patient wait is one that a
 * wake-up is certain to end (capacity frees, an older lease in front is served): it retries only
 * at `idleRetryMs`, a safety net, so that a long queue costs no work while it waits. Any other
 * wait (a lost race, a resource not open yet) backs off exponentially with jitter.
 *
 * The log is written when the wait changes (reason, keys), not on every retry, so that a long wait
 * does not flood the lease's log; `holders` changes alone are kept on the lease, not logged.
 */
export async function waitAndRetry(
  ctx: TxContext,
  lease: Lease,
  blocker: Blocker,
  options: { patient?: boolean } = {},
): Promise<Lease> {
  const attempts = lease.attempts + 1;
  const delay = options.patient ? ctx.deps.options.idleRetryMs : backoffDelayMs(attempts, ctx.deps.options);
  scheduleLeaseUpdate(ctx, lease.id, new Date(ctx.now.getTime() + delay));
  if (!sameWait(lease.blocker, blocker)) {
    const { reason, ...blockers } = blocker;
    await logLease(ctx, lease, { type: 'waiting-for-resources', data: { reason, blockers } });
  }
  // Raw SQL: this runs on every retry of every waiting lease, and Prisma's update costs a read-back.
  await ctx.tx.$executeRaw`
    UPDATE "Lease" SET attempts = ${attempts}, blocker = ${JSON.stringify(blocker)}::jsonb, "updatedAt" = ${ctx.now}::timestamp
    WHERE id = ${lease.id}`;
  return { ...lease, attempts, blocker: blocker as Prisma.JsonValue, updatedAt: ctx.now };
}

/** Same wait, for logging purposes: who holds a lock may change without the wait changing. */
export function sameWait(previous: unknown, next: Blocker): boolean {
  if (previous === null || typeof previous !== 'object') return false;
  const { holders: _a, ...before } = previous as Blocker;
  const { holders: _b, ...after } = next;
  return JSON.stringify(before) === JSON.stringify(after);
}

/** The lease got what it waited for: forget the blocker and the backoff. */
export const clearedWait = { attempts: 0, blocker: null } as const;
