import type { Lease } from '../../generated/prisma/client.js';
import { allocateLease } from '../allocate.js';
import { AfterCommit, type TxContext } from '../context.js';
import { mergePass, scheduleLeaseUpdate } from '../jobs.js';
import type { PoolViews } from './pool.js';

// Serving one unit of the pass's order: a lease, or a gang's parts all together.

/** Whether the lease holds a resource (granted). */
export const live = (lease: Lease) => lease.status === 'ACQUIRED' || lease.status === 'ACTIVE';

/** A lease that got a resource: its expiry is its own update's from here on. */
function granted(ctx: TxContext, lease: Lease): void {
  if (lease.until) scheduleLeaseUpdate(ctx, lease.id, lease.until);
}

/** Serves one lease; returns it as it is after (granted, waiting, or broken). */
export async function serveLease(ctx: TxContext, lease: Lease, pool: PoolViews): Promise<Lease> {
  const after = await allocateLease(ctx, lease, await pool.viewFor(ctx, lease));
  if (live(after)) granted(ctx, after);
  pool.served(after);
  return after;
}

/**
 * Serves a gang's parts in one savepoint: kept only if every part got a resource, rolled back
 * otherwise (with what the parts would have published and scheduled), so that a gang never holds
 * some parts while it waits for others; and rolled back too if `keep`, asked with every part
 * granted, says no ('undone'). Returns whether it was granted.
 */
export async function serveGang(
  ctx: TxContext,
  parts: readonly Lease[],
  keep?: (granted: readonly Lease[]) => Promise<boolean>,
): Promise<
  { kind: 'granted' } | { kind: 'undone' } | { kind: 'waiting'; part: Lease } | { kind: 'failed'; part: Lease }
> {
  const trial = trialOf(ctx);
  await ctx.tx.$executeRaw`SAVEPOINT gang`;
  let missing: Lease | null = null;
  const got: Lease[] = [];
  for (const part of parts) {
    const after = await allocateLease(trial, part);
    if (!live(after)) {
      missing = after;
      break;
    }
    granted(trial, after);
    got.push(after);
  }
  if (missing) {
    await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT gang`;
    // A part that broke can never be served: the gang breaks whole (the caller does it).
    return { kind: missing.status === 'PENDING' ? 'waiting' : 'failed', part: missing };
  }
  if (keep && !(await keep(got))) {
    await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT gang`;
    return { kind: 'undone' };
  }
  await ctx.tx.$executeRaw`RELEASE SAVEPOINT gang`;
  keepTrial(ctx, trial);
  return { kind: 'granted' };
}

/** A context for work inside a savepoint: what it would publish and schedule is kept apart. */
export function trialOf(ctx: TxContext): TxContext {
  // Grants inside the savepoint are written there, not with the pass's batch, so that rolling it
  // back takes them too.
  return { ...ctx, after: new AfterCommit(), jobs: new Map(), passes: new Map(), onCommit: [], grants: undefined };
}

/** The savepoint of `trial` was kept: what it publishes and schedules becomes the transaction's. */
export function keepTrial(ctx: TxContext, trial: TxContext): void {
  ctx.after.merge(trial.after);
  for (const [key, job] of trial.jobs) {
    const existing = ctx.jobs.get(key);
    if (!existing || job.runAt < existing.runAt) ctx.jobs.set(key, job);
  }
  for (const [type, pass] of trial.passes) mergePass(ctx.passes, type, pass);
  ctx.onCommit?.push(...(trial.onCommit ?? []));
}
