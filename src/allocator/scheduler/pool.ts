import type { Lease } from '../../generated/prisma/client.js';
import { allocationView, PassMemo, type AllocationView } from '../allocation-view.js';
import type { TxContext } from '../context.js';
import { demandKey, type Demand } from '../demand.js';

/**
 * The pool as one pass reads it: the allocation view (candidate blueprints, the least-loaded
 * resources with their live lease counts) is read once per demand and kept, with the counts moved
 * by the pass's own grants, instead of once per lease. Counts only fall behind by releases
 * committed meanwhile, which errs towards a resource looking busier than it is.
 *
 * Only for leases that never waited: a lease that did may have built or broken resources of its
 * own, which its view says (see AllocationView.broken and .building).
 */
export class PoolViews {
  private readonly views = new Map<string, AllocationView>();
  /** A view read ahead for one lease (see peek), which is not kept: handed out once. */
  private peeked: { leaseId: number; view: AllocationView } | null = null;
  /** The view handed out last: the one a lease just tried was served with. */
  lastView: AllocationView | null = null;
  /** Whether that view was read from the database for it (not kept from earlier in the pass). */
  lastReadNow = false;

  /**
   * A view of `demand` read ahead, with the pass's heads (see demandView): kept as the view its
   * first lease that never waited would have read, since the pass has granted nothing yet.
   */
  seed(demand: Demand, view: AllocationView): void {
    this.views.set(demandKey(demand), { ...view, memo: new PassMemo() });
  }

  /** The view `lease` will be served with, read now (the pass looks at it before serving). */
  async peek(ctx: TxContext, lease: Lease): Promise<AllocationView> {
    const view = await this.viewFor(ctx, lease);
    this.peeked = { leaseId: lease.id, view };
    return view;
  }

  async viewFor(ctx: TxContext, lease: Lease): Promise<AllocationView> {
    this.lastView = await this.read(ctx, lease);
    return this.lastView;
  }

  private async read(ctx: TxContext, lease: Lease): Promise<AllocationView> {
    const peeked = this.peeked;
    this.peeked = null;
    if (peeked?.leaseId === lease.id) return peeked.view;
    this.lastReadNow = false;
    const fresh = lease.blocker === null;
    const key = demandKey(lease);
    const kept = fresh ? this.views.get(key) : undefined;
    if (kept) return kept;
    // The pool's load as the database shows it must include this pass's grants so far.
    await ctx.grants?.flush(ctx);
    const view = await allocationView(ctx, lease, true);
    this.lastReadNow = true;
    if (!fresh) return view;
    const memoized = { ...view, memo: new PassMemo() };
    this.views.set(key, memoized);
    return memoized;
  }

  /**
   * What serving `lease` did to the pool: a grant on a resource a view shows (read, or built by
   * this pass) adds one live lease to it there; a view that does not show it (the resource was
   * built for another demand) is read again, and so is every view after anything else (a lease
   * left waiting for a resource, a gang), which may have changed the pool in ways a view does not
   * follow.
   */
  served(lease: Lease): void {
    this.peeked = null;
    const resourceId = lease.status === 'ACQUIRED' || lease.status === 'ACTIVE' ? lease.resourceId : null;
    if (resourceId === null) {
      this.views.clear();
      return;
    }
    for (const [key, view] of this.views) {
      const row =
        view.resources?.rows?.find((r) => Number(r.row['id']) === resourceId) ??
        view.memo?.built.find((b) => b.resource.id === resourceId);
      if (row) row.live = Number(row.live) + 1;
      else this.views.delete(key);
    }
  }

  /** The pool changed in ways the views do not follow (a gang's grants): read it again. */
  forget(): void {
    this.peeked = null;
    this.views.clear();
  }
}
