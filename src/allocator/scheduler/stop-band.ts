import { aged, mayServe, stopBandAfterFailure, type PolicySettings } from './policy-order.js';
import type { Unit } from './types.js';
import type { Blocker } from '../waiting.js';

/**
 * A pass's stop band (policy-order.ts, stopBandAfterFailure), kept with the refusals it stands on:
 * a unit taken back into the order (see PassedOverLeases.takeBack) no longer counts as refused.
 */
export class StopBand {
  private band = -Infinity;
  /** The refused unit that set the band: what a unit stopped by it is reserved for. */
  private leaseId = 0;
  private readonly refusals: { unit: Unit; band: number }[] = [];

  constructor(
    private readonly now: Date,
    private readonly settings: PolicySettings,
  ) {}

  /** Whether a unit of `unitBand` may still be served. */
  allows(unitBand: number): boolean {
    return mayServe(unitBand, this.band);
  }

  get blocker(): Blocker {
    return { reason: 'reserved', leaseId: this.leaseId };
  }

  refused(unit: Unit, unitBand: number): void {
    this.refusals.push({ unit, band: unitBand });
    const next = stopBandAfterFailure(this.band, unitBand, aged(unit, this.now, this.settings));
    if (next !== this.band) [this.band, this.leaseId] = [next, unit.id];
  }

  /** The band as the refusals of units other than `units` set it. */
  forget(units: ReadonlySet<Unit>): void {
    const kept = this.refusals.splice(0).filter((refusal) => !units.has(refusal.unit));
    [this.band, this.leaseId] = [-Infinity, 0];
    for (const refusal of kept) this.refused(refusal.unit, refusal.band);
  }
}
