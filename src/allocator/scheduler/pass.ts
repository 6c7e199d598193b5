import type { Lease } from '../../generated/prisma/client.js';
import type { JobClaim } from '../../queue/port.js';
import { allocateLease } from '../allocate.js';
import { inUpdateTransaction, type AllocatorDeps, type TxContext } from '../context.js';
import { scheduleJob, scheduleLeaseUpdate } from '../jobs.js';
import { demandKey } from './demand.js';
import { policyOrder } from './policy-order.js';
import { HEADS_PER_DEMAND, readHeads, takeTurn } from './read.js';
import { writeQueuedBehind, type Queued } from './write.js';

/**
 * The scheduling pass of one resource type (drydock-spec.md, "Scheduling"): the writer of the
 * type's PENDING leases. Holds the type's turn, reads the heads of its queue, takes them in policy
 * order and serves each it can; a lease whose demand already failed in this pass is not tried
 * again (queued behind the one that failed). Requests and freed capacity ask for a pass; one asked
 * for while this runs runs once more right after (the job's rerun flag), so that everything that
 * arrived meanwhile is served together by the next.
 */
export async function runSchedulingPass(deps: AllocatorDeps, queueId: number, claim?: JobClaim): Promise<void> {
  await inUpdateTransaction(
    deps,
    async (ctx) => {
      const resourceType = await takeTurn(ctx, queueId);
      if (resourceType === null) return;
      const heads = await readHeads(ctx, resourceType);
      const served = await serve(ctx, policyOrder(heads, ctx.now, deps.options));
      // A shape whose every head was served may have more waiting than were read.
      if (served.mayHaveMore) ctx.passes.set(resourceType, ctx.now);
      // This pass's own job: a request for it becomes the time its completion leaves it due.
      const again = ctx.passes.get(resourceType);
      if (again) {
        ctx.passes.delete(resourceType);
        scheduleJob(ctx, 'SCHEDULING_PASS', queueId, again);
      }
    },
    claim,
  );
}

/** The leases of one pass, in order. Returns whether more may wait than were read. */
async function serve(ctx: TxContext, ordered: Lease[]): Promise<{ mayHaveMore: boolean }> {
  const failed = new Map<string, number>();
  const perShape = new Map<string, number>();
  const queued: Queued[] = [];
  for (const lease of ordered) {
    const key = demandKey(lease);
    const shape = JSON.stringify(lease.attributes ?? {});
    perShape.set(shape, (perShape.get(shape) ?? 0) + 1);
    const behind = failed.get(key);
    if (behind !== undefined) {
      queued.push({ leaseId: lease.id, status: lease.status, blocker: lease.blocker, behind });
      continue;
    }
    const after = await allocateLease(ctx, lease);
    // Its expiry: the lease's own update at `until`, from here on its writer.
    if ((after.status === 'ACQUIRED' || after.status === 'ACTIVE') && after.until)
      scheduleLeaseUpdate(ctx, after.id, after.until);
    // A lease waiting for the resource it is building holds nothing back: the next one of its
    // demand may build or find its own.
    if (after.status === 'PENDING' && (after.blocker as { reason?: string } | null)?.reason !== 'waiting-for-resource-activation')
      failed.set(key, lease.id);
  }
  await writeQueuedBehind(ctx, queued);
  const mayHaveMore = [...perShape.values()].some((n) => n >= HEADS_PER_DEMAND) && failed.size === 0;
  return { mayHaveMore };
}
