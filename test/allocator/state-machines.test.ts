import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { AfterCommit, type TxContext } from '../../src/allocator/context.js';
import { IllegalTransition } from '../../src/domain-errors.js';
import { acquireSlotLocks, releaseSlotLocks } from '../../src/allocator/slot-locks.js';
import {
  leaseTransitions,
  resourceTransitions,
  assertLeaseTransition,
  assertResourceTransition,
} from '../../src/allocator/state-machines.js';
import { transitionLease } from '../../src/allocator/transitions.js';
import { backoffDelayMs } from '../../src/allocator/backoff.js';
import { describeEachDatabase } from '../support/database.js';
import { createHarness, type Harness } from '../support/allocator-harness.js';

it('lease state machine: exactly the moves of the spec', () => {
  const moves = Object.entries(leaseTransitions).flatMap(([from, tos]) => tos.map((to) => `${from}->${to}`));
  expect(moves.sort()).toEqual(
    [
      'PENDING->ACQUIRED',
      'PENDING->ACTIVE',
      'PENDING->RELEASED',
      'PENDING->BROKEN',
      'ACQUIRED->ACTIVE',
      'ACQUIRED->PENDING',
      'ACQUIRED->RELEASED',
      'ACQUIRED->BROKEN',
      'ACTIVE->RELEASED',
      'ACTIVE->BROKEN',
      'RELEASED->DESTROYED',
      'BROKEN->DESTROYED',
    ].sort(),
  );
  expect(() => assertLeaseTransition(1, 'DESTROYED', 'ACTIVE')).toThrow(IllegalTransition);
  expect(() => assertLeaseTransition(1, 'ACTIVE', 'PENDING')).toThrow(/cannot go from ACTIVE to PENDING/);
});

it('resource state machine: exactly the moves of the spec', () => {
  const moves = Object.entries(resourceTransitions).flatMap(([from, tos]) => tos.map((to) => `${from}->${to}`));
  expect(moves.sort()).toEqual(
    [
      'PENDING->ACTIVE',
      'PENDING->RELEASED',
      'PENDING->BROKEN',
      'ACTIVE->RELEASED',
      'ACTIVE->BROKEN',
      'RELEASED->DESTROYED',
      'BROKEN->DESTROYED',
    ].sort(),
  );
  expect(() => assertResourceTransition(1, 'RELEASED', 'ACTIVE')).toThrow(IllegalTransition);
});

it('backoff grows exponentially to the cap, with jitter in the upper half', () => {
  const options = { backoffBaseMs: 100, backoffCapMs: 1_000 };
  expect(backoffDelayMs(1, { ...options, random: () => 0 })).toBe(50);
  expect(backoffDelayMs(1, { ...options, random: () => 0.999 })).toBe(100);
  expect(backoffDelayMs(3, { ...options, random: () => 0 })).toBe(200);
  expect(backoffDelayMs(30, { ...options, random: () => 0.999 })).toBe(1_000);
});

describeEachDatabase('transitions and slot locks', (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  const inTx = <T>(fn: (ctx: TxContext) => Promise<T>) =>
    h.db.prisma.$transaction((tx) =>
      fn({
        tx,
        after: new AfterCommit(),
        now: new Date(),
        deps: undefined as never,
        jobs: new Map(),
        passes: new Map(),
      }),
    );

  it('an illegal transition throws and writes nothing', async () => {
    const lease = await h.db.prisma.lease.create({ data: { resourceType: 't', status: 'DESTROYED' } });
    await expect(
      inTx((ctx) => transitionLease(ctx, lease, 'ACTIVE', { type: 'lease-activated', data: { resourceId: 1 } })),
    ).rejects.toThrow(IllegalTransition);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('DESTROYED');
    expect(await h.db.prisma.log.count()).toBe(0);
  });

  it('takes all keys or none, reports the holders, and releases by owner', async () => {
    const a = await h.db.prisma.lease.create({ data: { resourceType: 't' } });
    const b = await h.db.prisma.lease.create({ data: { resourceType: 't' } });
    expect(await inTx((ctx) => acquireSlotLocks(ctx.tx, { leaseId: a.id }, ['k2', 'k1']))).toEqual({ ok: true });
    const conflict = await inTx((ctx) => acquireSlotLocks(ctx.tx, { leaseId: b.id }, ['k3', 'k1', 'k4']));
    expect(conflict).toEqual({ ok: false, holders: [{ key: 'k1', leaseId: a.id, resourceId: null }] });
    // None of b's keys stayed behind: all or none.
    expect(
      (await h.db.prisma.slotLock.findMany({ orderBy: { key: 'asc' } })).map((l) => [l.key, l.ownerLeaseId]),
    ).toEqual([
      ['k1', a.id],
      ['k2', a.id],
    ]);
    expect(await inTx((ctx) => releaseSlotLocks(ctx.tx, { leaseId: a.id }))).toBe(2);
    expect(await inTx((ctx) => acquireSlotLocks(ctx.tx, { leaseId: b.id }, ['k3', 'k1', 'k4']))).toEqual({ ok: true });
  });
});
