import type { JobClaim } from '../../queue/port.js';
import { backoffDelayMs } from '../backoff.js';
import type { AllocatorDeps, TxContext } from '../context.js';
import { inUpdateTransaction } from '../transaction.js';
import { scheduleJob, schedulePass } from '../jobs.js';
import type { Demand } from '../demand.js';
import { demandView } from '../allocation-view.js';
import { nothingWaiting } from './idle-queues.js';
import { readHeads, takeTurn, type OwnerRow } from './read.js';
import { serve } from './serve.js';

/**
 * The scheduling pass of one resource type (drydock-spec.md, "Scheduling"): the writer of the
 * type's PENDING leases. Holds the type's turn, reads the heads of its queue, takes them in policy
 * order (policy-order.ts) and serves each it may; requests and freed capacity ask for a pass, and
 * one asked for while this runs runs once more right after (the job's rerun flag), so that
 * everything that arrived meanwhile is served together by the next.
 */
export async function runSchedulingPass(deps: AllocatorDeps, queueId: number, claim?: JobClaim): Promise<void> {
  // A request starting its own pass (it carries the request's event) has a lease waiting for sure;
  // a pass asked for again while the one before it ran most likely has one too (a request came).
  const idle = deps.idleQueues;
  if (idle?.has(queueId) && !claim?.carried && !claim?.continues && (await nothingWaiting(deps.db, queueId, claim)))
    return;
  let passType: string | null = null;
  let granted = 0;
  const started = performance.now();
  await inUpdateTransaction(
    deps,
    async (ctx) => {
      // Nothing of the pass runs after its transaction.
      ctx.endsJob = true;
      const { turn, heads, skipped, owners, ahead } = await turnAndHeads(ctx, queueId);
      if (turn === null) return;
      const { resourceType, epoch } = turn;
      passType = resourceType;
      ctx.capacityEpoch = { resourceType, epoch };
      const served = await serve(ctx, resourceType, turn, heads, owners, ahead);
      granted = served.granted;
      ctx.onCommit?.push(() => expectDemand(deps, queueId, served.firstDemand));
      const leftWaiting = served.leftWaiting || served.mayHaveMore || skipped > 0;
      ctx.onCommit?.push(() => idle?.record(queueId, leftWaiting));
      if (served.mayHaveMore) schedulePass(ctx, resourceType, ctx.now, { capacity: false });
      // A head another transaction held was left to it; should that one die before committing,
      // nothing else would bring this type's pass back for it.
      else if (skipped > 0)
        schedulePass(ctx, resourceType, new Date(ctx.now.getTime() + backoffDelayMs(1, ctx.deps.options)), {
          capacity: false,
        });
      // This pass's own job: a request for it becomes the time its completion leaves it due. What
      // the pass asks of its own type carries no capacity: a pass frees none for its own leases
      // (the leases it breaks held nothing), and what it tried it tried after every mark it read.
      const again = ctx.passes.get(resourceType);
      if (again) {
        ctx.passes.delete(resourceType);
        scheduleJob(ctx, 'SCHEDULING_PASS', queueId, again.runAt);
      }
    },
    claim,
  );
  if (passType === null) return;
  deps.passPacing?.ended(passType);
  deps.passes?.passed({ resourceType: passType, seconds: (performance.now() - started) / 1_000, granted });
}

/**
 * The type's turn, then its heads. Once this process knows the queue's type, both statements are
 * sent at once, one round trip: PostgreSQL runs the heads' read after the turn is taken, in a
 * snapshot of its own, so it sees every commit the turn waited for. So is, when the last pass
 * granted a lease that never waited, the view of that lease's demand (`ahead`): most passes
 * serve the demand the one before served, and its first lease need not read the pool in a
 * round trip of its own.
 */
async function turnAndHeads(ctx: TxContext, queueId: number) {
  const known = ctx.deps.queueTypes?.get(queueId);
  if (known === undefined) {
    const turn = await takeTurn(ctx, queueId);
    if (turn === null) return { turn, heads: [], skipped: 0, owners: new Map<number, OwnerRow>(), ahead: undefined };
    ctx.deps.queueTypes?.set(queueId, turn.resourceType);
    return { turn, ...(await readHeads(ctx, turn.resourceType)), ahead: undefined };
  }
  const demand = ctx.deps.passDemands?.get(queueId);
  const [turn, read, view] = await Promise.all([
    takeTurn(ctx, queueId),
    readHeads(ctx, known),
    demand ? demandView(ctx, known, demand) : undefined,
  ]);
  return { turn, ...read, ahead: demand && view ? { demand, view } : undefined };
}

/**
 * What the next pass of the queue reads ahead (see turnAndHeads): the demand of this one's first
 * grant to a lease that never waited; none when it granted none, so that a queue whose leases
 * all wait does not read a view no lease uses on every pass.
 */
function expectDemand(deps: AllocatorDeps, queueId: number, demand: Demand | null): void {
  if (demand) deps.passDemands?.set(queueId, demand);
  else deps.passDemands?.delete(queueId);
}
