import { describe, expect, it } from 'vitest';
import {
  aged,
  band,
  mayServe,
  policyOrder,
  PolicyQueue,
  share,
  stopBandAfterFailure,
  type Owner,
  type Waiting,
} from '../../src/allocator/scheduler/policy-order.js';

// The pass's order as pure functions: priority bands with aging, fair share, arrival.

const MINUTE = 60_000;
const settings = { agingIntervalMs: 10 * MINUTE };
const now = new Date('2026-11-30T12:00:00Z');
const ago = (minutes: number) => new Date(now.getTime() - minutes * MINUTE);
const lease = (id: number, fields: Partial<Waiting> = {}): Waiting => ({
  id,
  priority: 0,
  createdAt: ago(1),
  ownerId: 1,
  ...fields,
});
const ids = (leases: Waiting[]) => leases.map((l) => l.id);

describe('policy order', () => {
  it('band is the priority plus one per aging interval waited', () => {
    expect(band(lease(1, { priority: 2, createdAt: ago(0) }), now, settings)).toBe(2);
    expect(band(lease(1, { priority: 2, createdAt: ago(9) }), now, settings)).toBe(2);
    expect(band(lease(1, { priority: 2, createdAt: ago(10) }), now, settings)).toBe(3);
    expect(band(lease(1, { priority: -3, createdAt: ago(35) }), now, settings)).toBe(0);
    // A clock behind a lease's creation (another process's clock) never lowers it.
    expect(band(lease(1, { createdAt: new Date(now.getTime() + MINUTE) }), now, settings)).toBe(0);
    expect(aged(lease(1, { createdAt: ago(10) }), now, settings)).toBe(true);
    expect(aged(lease(1, { createdAt: ago(9) }), now, settings)).toBe(false);
  });

  it('serves higher priority first, then arrival', () => {
    const leases = [
      lease(1),
      lease(2, { priority: 5 }),
      lease(3),
      lease(4, { priority: -1 }),
      lease(5, { priority: 5 }),
    ];
    expect(ids(policyOrder(leases, new Map(), now, settings, false))).toEqual([2, 5, 1, 3, 4]);
  });

  it('a low priority that waited long enough goes ahead of newer high ones', () => {
    const leases = [lease(1, { priority: 3 }), lease(2, { priority: 0, createdAt: ago(45) })];
    expect(ids(policyOrder(leases, new Map(), now, settings, false))).toEqual([2, 1]);
  });

  it('within a band, the owner with the smaller share of its weight goes first; grants in the pass count', () => {
    const owners = new Map<number, Owner>([
      [1, { live: 4, weight: 1 }],
      [2, { live: 4, weight: 4 }],
      [3, { live: 0, weight: 1 }],
    ]);
    const leases = [
      lease(1, { ownerId: 1 }),
      lease(2, { ownerId: 2 }),
      lease(3, { ownerId: 2 }),
      lease(4, { ownerId: 3 }),
      lease(5, { ownerId: 3 }),
      lease(6, { ownerId: 2 }),
    ];
    // Shares: owner 3 0/1, owner 2 4/4 = 1, owner 1 4/1 = 4. Owner 3 takes one (1/1 = 1), ties with
    // owner 2 at 1: arrival breaks it (lease 2 before 5); then 3 (5/4) ... as each grant moves a share.
    expect(ids(policyOrder(leases, owners, now, settings))).toEqual([4, 2, 5, 3, 6, 1]);
    expect(share({ live: 3, weight: 2 }, 1)).toBe(2);
    expect(share(undefined, 0)).toBe(0);
  });

  it('without grants (nothing served), an owner keeps its place by share', () => {
    const owners = new Map<number, Owner>([
      [1, { live: 0, weight: 1 }],
      [2, { live: 1, weight: 1 }],
    ]);
    const leases = [lease(1, { ownerId: 2 }), lease(2, { ownerId: 1 }), lease(3, { ownerId: 1 })];
    expect(ids(policyOrder(leases, owners, now, settings, false))).toEqual([2, 3, 1]);
  });

  it('a gang counts as its size in its owner’s share', () => {
    const owners = new Map<number, Owner>([
      [1, { live: 0, weight: 1 }],
      [2, { live: 0, weight: 1 }],
    ]);
    const queue = new PolicyQueue(
      [lease(1, { ownerId: 1, size: 3 }), lease(2, { ownerId: 1 }), lease(3, { ownerId: 2 })],
      owners,
      now,
      settings,
    );
    const first = queue.next()!;
    expect(first.id).toBe(1);
    queue.granted(first, 3);
    expect(queue.next()!.id).toBe(3);
    expect(queue.next()!.id).toBe(2);
    expect(queue.next()).toBeUndefined();
  });

  it('dropOwner removes what is left of one owner', () => {
    const queue = new PolicyQueue(
      [lease(1, { ownerId: 1 }), lease(2, { ownerId: 2 }), lease(3, { ownerId: 1 })],
      new Map(),
      now,
      settings,
    );
    expect(ids(queue.dropOwner(1))).toEqual([1, 3]);
    expect(queue.next()!.id).toBe(2);
    expect(queue.next()).toBeUndefined();
  });

  it('an aged failure stops lower bands; an unaged one does not', () => {
    expect(stopBandAfterFailure(-Infinity, 2, false)).toBe(-Infinity);
    expect(stopBandAfterFailure(-Infinity, 2, true)).toBe(2);
    expect(stopBandAfterFailure(3, 2, true)).toBe(3);
    expect(mayServe(1, 2)).toBe(false);
    expect(mayServe(2, 2)).toBe(true);
    expect(mayServe(-5, -Infinity)).toBe(true);
  });
});
