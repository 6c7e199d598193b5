import type { Lease } from '../../generated/prisma/client.js';
import { demandKey } from '../demand.js';
import type { AllocationView } from '../allocation-view.js';
import type { Unit } from './types.js';
import type { Blocked } from './write.js';

/**
 * A single lease not served so far in a pass, failed or queued behind a failure, with the pass's
 * grant count when it was passed over, and whether what it waits for is capacity: as its own try
 * found, or, untried (queued behind the first of its demand, or refused without a try in the
 * capacity epoch), as the lease it waits behind was found. Its `lease.blocker` is what a pass
 * before this one wrote until it is tried.
 */
export interface PassedOver {
  unit: Unit;
  lease: Lease;
  grantsBefore: number;
  capacity: boolean;
  /** The capacity mark its refusal saw: of its view when tried, of the turn when skipped. */
  mark: string | null | undefined;
  /** The blueprints its view let it use; null when not known (not tried): any. */
  blueprintIds: readonly number[] | null;
  /**
   * Refused in the capacity epoch without a try, or queued behind one that was: capacity freed
   * for it is what a newer mark announces (see takeBack), not what a probe finds.
   */
  untried: boolean;
}

/** Why a lease is refused when what it lacks is capacity another lease of its demand could get. */
const CAPACITY_REASONS = new Set(['no-capacity', 'slot-lock-failure', 'draining', 'waiting-for-reclaim']);
const waitsForCapacity = (lease: Lease) =>
  CAPACITY_REASONS.has((lease.blocker as { reason?: string } | null)?.reason ?? '');

export const shapeOf = (lease: Lease) => JSON.stringify(lease.attributes ?? {});
const sameBlueprints = (a: Lease, b: Lease) => a.allowedBlueprintIds.join(',') === b.allowedBlueprintIds.join(',');

/**
 * The single leases a pass has passed over, in order, with the first refused of each demand, and
 * the pass's grant count they are judged by: what decides which lease ahead keeps capacity from
 * one being tried, and which go back into the order when capacity frees mid-pass.
 */
export class PassedOverLeases {
  private readonly entries: PassedOver[] = [];
  /** Each demand's first lease refused in this pass (its unit's id). */
  private readonly failedDemand = new Map<string, number>();
  /** Refused without a try (capacity-epoch.ts), in order; emptied when they are taken back. */
  skipped: PassedOver[] = [];
  /** Leases the pass has granted so far. */
  served = 0;

  /** The first lease of `lease`'s demand refused in this pass, if any: it waits behind that one. */
  firstOfDemand(lease: Lease): number | undefined {
    return this.failedDemand.get(demandKey(lease));
  }

  /** Queued behind `firstId`, untried: it waits for what that one was found to wait for. */
  queueBehind(unit: Unit, firstId: number): void {
    const first = this.entries.find((p) => p.unit.id === firstId);
    this.entries.push({
      unit,
      lease: unit.lease,
      grantsBefore: this.served,
      capacity: first?.capacity ?? true,
      mark: first?.mark,
      blueprintIds: first?.blueprintIds ?? null,
      untried: first?.untried ?? false,
    });
  }

  /** Refused without a try, as the turn's capacity mark says (a patient wait is one for capacity). */
  refuseUntried(unit: Unit, mark: string | null): void {
    this.failedDemand.set(demandKey(unit.lease), unit.id);
    const entry = {
      unit,
      lease: unit.lease,
      grantsBefore: this.served,
      capacity: true,
      mark,
      blueprintIds: null,
      untried: true,
    };
    this.entries.push(entry);
    this.skipped.push(entry);
  }

  /** Refused after a try that read `view` (the pool's view it was last offered, if any). */
  refuse(unit: Unit, after: Lease, view: AllocationView | null | undefined): void {
    this.failedDemand.set(demandKey(unit.lease), unit.id);
    this.entries.push({
      unit,
      lease: after,
      grantsBefore: this.served,
      capacity: waitsForCapacity(after),
      mark: view?.capacityMark,
      blueprintIds: view?.blueprints?.filter((b) => b.authorized).map((b) => b.blueprint.id) ?? null,
      untried: false,
    });
  }

  /**
   * Only leases passed over since the pass's last grant are offered the pool again: one served
   * now after a grant that came behind it in the order would be granted out of order.
   */
  private retriable(p: PassedOver, shape: string): boolean {
    return shapeOf(p.lease) === shape && p.grantsBefore === this.served;
  }

  /**
   * The first lease ahead of `lease`, of its attributes but another demand, refused in this pass
   * and still retriable (the first of its own demand to be refused). Its id, or undefined.
   */
  refusedAhead(lease: Lease): number | undefined {
    const shape = shapeOf(lease);
    return this.entries.find((p) => this.retriable(p, shape) && this.firstOfDemand(p.lease) === p.unit.id)?.unit.id;
  }

  /**
   * A lease passed over before the pass's last grant that could use whatever `lease` is given (the
   * same attributes and allowed blueprints; refused for want of capacity, not for something of its
   * own such as authorizations): it may no longer be offered the pool in this pass, and `lease`
   * may not take what it would have had. Its id, or undefined.
   */
  heldAhead(lease: Lease): number | undefined {
    const shape = shapeOf(lease);
    return this.entries.find(
      (p) => p.capacity && shapeOf(p.lease) === shape && !this.retriable(p, shape) && sameBlueprints(p.lease, lease),
    )?.unit.id;
  }

  /**
   * The first lease of each demand passed over in this pass after a try and waiting for capacity,
   * but those of `lease`'s attributes and allowed blueprints (refusedAhead and heldAhead keep
   * capacity for them); for a gang (null), all of them. Not those refused without a try in the
   * epoch: their wait is one only a capacity mark ends, and a newer one sends them back first.
   */
  othersAhead(lease: Lease | null): PassedOver[] {
    const same = (p: PassedOver) =>
      lease !== null && shapeOf(p.lease) === shapeOf(lease) && sameBlueprints(p.lease, lease);
    return this.entries.filter(
      (p) => p.capacity && !p.untried && this.firstOfDemand(p.lease) === p.unit.id && !same(p),
    );
  }

  /**
   * Every lease passed over since the pass's last grant, taken out to go back into the order (each
   * with the lease as the pass read it), in order; null, and nothing taken, when a lease skipped
   * without a try was passed over before that grant: serving it now would put the pass's grants
   * out of order.
   */
  takeBack(): PassedOver[] | null {
    if (this.skipped.some((entry) => this.entries.includes(entry) && entry.grantsBefore !== this.served)) return null;
    this.skipped = [];
    const again = this.entries.filter((entry) => entry.grantsBefore === this.served);
    for (const entry of again) {
      this.entries.splice(this.entries.indexOf(entry), 1);
      entry.unit.lease = entry.lease;
    }
    // Each demand's first lease still passed over, after some of them were taken back.
    for (const key of [...this.failedDemand.keys()]) {
      const first = this.entries.find((p) => demandKey(p.lease) === key);
      if (first) this.failedDemand.set(key, first.unit.id);
      else this.failedDemand.delete(key);
    }
    return again;
  }

  /** Each lease queued behind the first lease of its demand that is still refused. */
  queuedBehind(): Blocked[] {
    return this.entries.flatMap(({ unit, lease }) => {
      const first = this.firstOfDemand(lease);
      return first !== undefined && first !== unit.id
        ? [{ lease, blocker: { reason: 'queued-behind', leaseId: first } }]
        : [];
    });
  }
}
