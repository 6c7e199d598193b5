import type { Lease } from '../../generated/prisma/client.js';
import { allocationView, type AllocationView } from '../allocate.js';
import type { TxContext } from '../context.js';
import { demandKey } from './demand.js';

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

  async viewFor(ctx: TxContext, lease: Lease): Promise<AllocationView> {
    const fresh = lease.blocker === null;
    const key = demandKey(lease);
    const kept = fresh ? this.views.get(key) : undefined;
    if (kept) return kept;
    // The pool's load as the database shows it must include this pass's grants so far.
    await ctx.grants?.flush(ctx);
    const view = await allocationView(ctx, lease);
    if (fresh) this.views.set(key, view);
    return view;
  }

  /**
   * What serving `lease` did to the pool: a grant on a resource the views show adds one live lease
   * to it in each; anything else (a resource built, a lease left waiting for one, a gang) may have
   * changed the pool in ways a view does not follow, so every view is read again.
   */
  served(lease: Lease): void {
    const resourceId = lease.status === 'ACQUIRED' || lease.status === 'ACTIVE' ? lease.resourceId : null;
    const rows = [...this.views.values()].map((view) =>
      view.resources?.rows?.find((r) => Number(r.row['id']) === resourceId),
    );
    if (resourceId === null || rows.every((row) => row === undefined)) {
      this.views.clear();
      return;
    }
    for (const row of rows) if (row) row.live = Number(row.live) + 1;
  }

  /** The pool changed in ways the views do not follow (a gang's grants): read it again. */
  forget(): void {
    this.views.clear();
  }
}
