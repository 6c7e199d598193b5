// The order a scheduling pass considers waiting leases in (drydock-spec.md, "Scheduling"), as
// pure functions: no database, no clock of their own, so that they are unit-tested alone and the
// queue query shows exactly the order the next pass will use.

/** What the order looks at of a waiting lease (a gang is ordered as one unit: see gangUnit). */
export interface Waiting {
  id: number;
  priority: number;
  createdAt: Date;
  ownerId: number | null;
  /** Leases that count as one unit (a gang's parts); its id is the unit's. */
  size?: number;
}

/** What the order looks at of an owner: its live leases of the type, and its weight. */
export interface Owner {
  live: number;
  weight: number;
}

export interface PolicySettings {
  /** A lease's band rises by one per this much waiting. */
  agingIntervalMs: number;
}

/** Priority plus one per aging interval waited: nothing waits forever behind newer high ones. */
export function band(lease: Pick<Waiting, 'priority' | 'createdAt'>, now: Date, settings: PolicySettings): number {
  const waited = Math.max(0, now.getTime() - lease.createdAt.getTime());
  return lease.priority + Math.floor(waited / settings.agingIntervalMs);
}

/** Whether the lease has waited at least one aging interval. */
export function aged(lease: Pick<Waiting, 'createdAt'>, now: Date, settings: PolicySettings): boolean {
  return now.getTime() - lease.createdAt.getTime() >= settings.agingIntervalMs;
}

/** An owner's share: its live leases (and those granted so far in this pass) per unit of weight. */
export function share(owner: Owner | undefined, grantedThisPass: number): number {
  const live = (owner?.live ?? 0) + grantedThisPass;
  return live / Math.max(owner?.weight ?? 1, 1);
}

const NO_OWNER = -1;
const ownerOf = (lease: Waiting) => lease.ownerId ?? NO_OWNER;

/**
 * Waiting leases in policy order, taken one at a time because the order depends on what was
 * granted before (fair share rises with each grant of an owner in this pass):
 * 1. band (priority plus aging), higher first;
 * 2. the owner's share (live + granted this pass) / weight, smaller first;
 * 3. arrival (creation time, then id), older first.
 *
 * Within one owner the share is the same for all its leases, so each owner's leases are sorted once
 * by band and arrival; each step picks the best of the owners' heads.
 */
export class PolicyQueue<T extends Waiting> {
  private readonly byOwner = new Map<number, T[]>();
  private readonly grants = new Map<number, number>();
  private readonly bands = new Map<T, number>();

  constructor(
    leases: readonly T[],
    private readonly owners: ReadonlyMap<number, Owner>,
    now: Date,
    settings: PolicySettings,
  ) {
    for (const lease of leases) {
      this.bands.set(lease, band(lease, now, settings));
      const list = this.byOwner.get(ownerOf(lease)) ?? [];
      list.push(lease);
      this.byOwner.set(ownerOf(lease), list);
    }
    for (const list of this.byOwner.values()) list.sort((a, b) => this.compareWithinOwner(a, b));
  }

  bandOf(lease: T): number {
    return this.bands.get(lease) ?? lease.priority;
  }

  private compareWithinOwner(a: T, b: T): number {
    return this.bandOf(b) - this.bandOf(a) || arrival(a, b);
  }

  /** The next lease in policy order, removed from the queue; undefined when none is left. */
  next(): T | undefined {
    let best: { lease: T; owner: number; share: number } | undefined;
    for (const [owner, list] of this.byOwner) {
      const lease = list[0];
      if (!lease) continue;
      const candidate = {
        lease,
        owner,
        share: owner === NO_OWNER ? 0 : share(this.owners.get(owner), this.grants.get(owner) ?? 0),
      };
      if (!best || compareHeads(candidate, best, (l) => this.bandOf(l)) < 0) best = candidate;
    }
    if (!best) return undefined;
    this.byOwner.get(best.owner)!.shift();
    return best.lease;
  }

  /** The lease was granted (`count` leases: a gang's parts): its owner's share rises. */
  granted(lease: T, count = 1): void {
    const owner = ownerOf(lease);
    this.grants.set(owner, (this.grants.get(owner) ?? 0) + count);
  }

  /**
   * `lease`, just taken by next(), goes back to the head of its owner's leases: something served
   * before it changed the shares, quotas or bands it was taken by, and the order is asked again.
   */
  putBack(lease: T): void {
    const owner = ownerOf(lease);
    this.byOwner.set(owner, [lease, ...(this.byOwner.get(owner) ?? [])]);
  }

  /** Drops every remaining lease of `ownerId` (an owner at its quota). */
  dropOwner(ownerId: number | null): T[] {
    const owner = ownerId ?? NO_OWNER;
    const dropped = this.byOwner.get(owner) ?? [];
    this.byOwner.delete(owner);
    return dropped;
  }
}

function arrival(a: Waiting, b: Waiting): number {
  return a.createdAt.getTime() - b.createdAt.getTime() || a.id - b.id;
}

function compareHeads<T extends Waiting>(
  a: { lease: T; share: number },
  b: { lease: T; share: number },
  bandOf: (lease: T) => number,
): number {
  return bandOf(b.lease) - bandOf(a.lease) || a.share - b.share || arrival(a.lease, b.lease);
}

/**
 * The whole order at once, for a queue nobody is granted from (the visible queue): as the pass
 * would take them if it granted each in turn.
 */
export function policyOrder<T extends Waiting>(
  leases: readonly T[],
  owners: ReadonlyMap<number, Owner>,
  now: Date,
  settings: PolicySettings,
  assumeGranted = true,
): T[] {
  const queue = new PolicyQueue(leases, owners, now, settings);
  const order: T[] = [];
  for (let lease = queue.next(); lease; lease = queue.next()) {
    order.push(lease);
    if (assumeGranted) queue.granted(lease, lease.size ?? 1);
  }
  return order;
}

/**
 * The stop rule that keeps backfill from starving: once a lease of band `stopBand` or more could
 * not be served and has aged, leases of a lower band get nothing in this pass, so that what frees
 * goes to it first. Returns the new stop band (or the old one).
 */
export function stopBandAfterFailure(current: number, failedBand: number, failedAged: boolean): number {
  return failedAged ? Math.max(current, failedBand) : current;
}

/** Whether a lease of `leaseBand` may still be served under `stopBand`. */
export function mayServe(leaseBand: number, stopBand: number): boolean {
  return leaseBand >= stopBand;
}
