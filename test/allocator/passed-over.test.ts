import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/generated/prisma/client.js';
import type { AllocationView } from '../../src/allocator/allocation-view.js';
import { PassedOverLeases } from '../../src/allocator/scheduler/passed-over.js';
import { StopBand } from '../../src/allocator/scheduler/stop-band.js';
import type { Unit } from '../../src/allocator/scheduler/types.js';

// What a pass remembers of the leases it passed over, and its stop band: pure, no database.

const now = new Date('2026-12-07T12:00:00Z');
const MINUTE = 60_000;

interface Shape {
  attributes?: Record<string, unknown>;
  blueprints?: number[];
  principal?: number;
  reason?: string;
  createdAt?: Date;
}

const lease = (id: number, shape: Shape = {}): Lease =>
  ({
    id,
    status: 'PENDING',
    priority: 0,
    ownerId: shape.principal ?? 1,
    authorizingPrincipalId: shape.principal ?? 1,
    attributes: shape.attributes ?? { os: 'linux' },
    allowedBlueprintIds: shape.blueprints ?? [],
    blocker: shape.reason ? { reason: shape.reason } : null,
    createdAt: shape.createdAt ?? new Date(now.getTime() - MINUTE),
  }) as unknown as Lease;

const unitOf = (l: Lease): Unit => ({
  id: l.id,
  priority: l.priority,
  createdAt: l.createdAt,
  ownerId: l.ownerId,
  lease: l,
});
/** As a try leaves it: still PENDING, with the blocker its try wrote. */
const refusedAs = (l: Lease, reason: string): Lease => ({ ...l, blocker: { reason } }) as Lease;
const view = (mark: string) => ({ capacityMark: mark, blueprints: null }) as unknown as AllocationView;

describe('leases a pass passed over', () => {
  it('a lease of a refused demand queues behind its first, untried, and is written as queued behind it', () => {
    const passed = new PassedOverLeases();
    const [a, b] = [unitOf(lease(1)), unitOf(lease(2))];
    expect(passed.firstOfDemand(a.lease)).toBeUndefined();
    passed.refuse(a, refusedAs(a.lease, 'no-capacity'), view('m1'));
    expect(passed.firstOfDemand(b.lease)).toBe(1);
    passed.queueBehind(b, 1);
    expect(passed.queuedBehind()).toEqual([{ lease: b.lease, blocker: { reason: 'queued-behind', leaseId: 1 } }]);
  });

  it('capacity goes to a refused lease of the same attributes: offered again until a grant, then held for it', () => {
    const passed = new PassedOverLeases();
    const a = unitOf(lease(1, { blueprints: [7] }));
    passed.refuse(a, refusedAs(a.lease, 'no-capacity'), view('m1'));
    // Same attributes and blueprints, another demand (another principal).
    const sameShape = lease(2, { blueprints: [7], principal: 2 });
    // Same attributes, other blueprints: another demand that may still take what `a` cannot use.
    const otherBlueprints = lease(3, { blueprints: [8], principal: 2 });
    expect(passed.refusedAhead(sameShape)).toBe(1);
    expect(passed.refusedAhead(otherBlueprints)).toBe(1);
    expect(passed.heldAhead(sameShape)).toBeUndefined();
    passed.served += 1;
    // Offered again now, `a` would be granted after a lease behind it: it keeps what is freed instead.
    expect(passed.refusedAhead(sameShape)).toBeUndefined();
    expect(passed.heldAhead(sameShape)).toBe(1);
    expect(passed.heldAhead(otherBlueprints)).toBeUndefined();
  });

  it('a lease refused for something of its own (not capacity) keeps nothing from anyone', () => {
    const passed = new PassedOverLeases();
    const a = unitOf(lease(1));
    passed.refuse(a, refusedAs(a.lease, 'no-authorizations'), view('m1'));
    passed.served += 1;
    expect(passed.heldAhead(lease(2, { principal: 2 }))).toBeUndefined();
    expect(passed.othersAhead(lease(3, { attributes: { os: 'bsd' } }))).toEqual([]);
    expect(passed.othersAhead(null)).toEqual([]);
  });

  it('others ahead: tried leases of other attributes waiting for capacity, each demand once; a gang asks of all', () => {
    const passed = new PassedOverLeases();
    const linux = unitOf(lease(1));
    const bsd = unitOf(lease(2, { attributes: { os: 'bsd' } }));
    const bsdBehind = unitOf(lease(3, { attributes: { os: 'bsd' } }));
    const skipped = unitOf(lease(4, { attributes: { os: 'plan9' } }));
    passed.refuse(linux, refusedAs(linux.lease, 'no-capacity'), view('m1'));
    passed.refuse(bsd, refusedAs(bsd.lease, 'slot-lock-failure'), view('m1'));
    passed.queueBehind(bsdBehind, 2);
    passed.refuseUntried(skipped, 'm0');
    const ids = (lease: Lease | null) => passed.othersAhead(lease).map((p) => p.unit.id);
    // Not those of its own attributes and blueprints, nor one refused without a try (a mark sends it back).
    expect(ids(lease(9))).toEqual([2]);
    expect(ids(lease(9, { attributes: { os: 'bsd' } }))).toEqual([1]);
    // Other blueprints: another shape as far as what `linux` could use goes.
    expect(ids(lease(9, { blueprints: [5] }))).toEqual([1, 2]);
    expect(ids(null)).toEqual([1, 2]);
  });

  it('takes back every lease passed over since the last grant, in order, as the pass read it', () => {
    const passed = new PassedOverLeases();
    const early = unitOf(lease(1, { attributes: { os: 'bsd' } }));
    passed.refuse(early, refusedAs(early.lease, 'no-capacity'), view('m1'));
    passed.served += 1;
    const first = unitOf(lease(2));
    const behind = unitOf(lease(3));
    const triedAs = refusedAs(first.lease, 'no-capacity');
    passed.refuse(first, triedAs, view('m1'));
    passed.queueBehind(behind, 2);
    const again = passed.takeBack();
    expect(again?.map((p) => p.unit.id)).toEqual([2, 3]);
    expect(first.lease).toBe(triedAs);
    // Its demand has no refused lease left in the pass; the one before the grant stays.
    expect(passed.firstOfDemand(first.lease)).toBeUndefined();
    expect(passed.firstOfDemand(early.lease)).toBe(1);
    expect(passed.queuedBehind()).toEqual([]);
    expect(passed.othersAhead(null).map((p) => p.unit.id)).toEqual([1]);
  });

  it('takes nothing back when a lease skipped without a try was passed over before the last grant', () => {
    const passed = new PassedOverLeases();
    const skipped = unitOf(lease(1));
    const behind = unitOf(lease(2));
    passed.refuseUntried(skipped, 'm0');
    passed.queueBehind(behind, 1);
    passed.served += 1;
    expect(passed.takeBack()).toBeNull();
    expect(passed.skipped).toHaveLength(1);
    expect(passed.queuedBehind()).toEqual([{ lease: behind.lease, blocker: { reason: 'queued-behind', leaseId: 1 } }]);
  });

  it('a skipped lease passed over since the last grant is taken back, and nothing is skipped after', () => {
    const passed = new PassedOverLeases();
    const skipped = unitOf(lease(1));
    passed.refuseUntried(skipped, 'm0');
    expect(passed.takeBack()?.map((p) => p.unit.id)).toEqual([1]);
    expect(passed.skipped).toEqual([]);
    expect(passed.firstOfDemand(skipped.lease)).toBeUndefined();
  });
});

describe("a pass's stop band", () => {
  const settings = { agingIntervalMs: 10 * MINUTE };
  const aged = (id: number) => unitOf(lease(id, { createdAt: new Date(now.getTime() - 11 * MINUTE) }));

  it('only an aged refusal stops lower bands, and units taken back no longer count', () => {
    const stop = new StopBand(now, settings);
    stop.refused(unitOf(lease(1)), 5);
    expect(stop.allows(0)).toBe(true);
    const old = aged(2);
    stop.refused(old, 3);
    expect([stop.allows(2), stop.allows(3)]).toEqual([false, true]);
    expect(stop.blocker).toEqual({ reason: 'reserved', leaseId: 2 });
    const older = aged(3);
    stop.refused(older, 1);
    expect(stop.blocker).toEqual({ reason: 'reserved', leaseId: 2 });
    stop.forget(new Set([old]));
    expect([stop.allows(0), stop.allows(1)]).toEqual([false, true]);
    expect(stop.blocker).toEqual({ reason: 'reserved', leaseId: 3 });
    stop.forget(new Set([older]));
    expect(stop.allows(-5)).toBe(true);
  });
});
