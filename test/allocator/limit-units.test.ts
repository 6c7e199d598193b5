import { expect, it } from 'vitest';
import { limitSlotKey } from '../../src/blueprints/implementation.js';
import { describeEachDatabase } from '../support/database.js';
import { harnessForEachTest, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A blueprint's resource limit is one slot lock per unit. A build looks first at a window of units
// from the blueprint's count of live resources on, and at every unit only when none of those is
// free: the limit must hold either way, and a unit freed below the window must still be found.

const LIMIT = 70;

describeEachDatabase('the units of a resource limit larger than the window a build looks at first', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  /** Held units of the limit, by unit, with the resource holding each. */
  async function heldUnits(blueprintId: number): Promise<Map<number, number>> {
    const rows = await h.db.prisma.slotLock.findMany({
      where: { key: { startsWith: limitSlotKey(blueprintId, 0).replace(/0\)$/, '') } },
    });
    return new Map(rows.map((r) => [Number(/\.limit\((\d+)\)$/.exec(r.key)![1]), r.ownerResourceId!]));
  }

  it('fills the limit, never past it, and finds units freed below the window', async () => {
    const blueprint = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'slots',
        implementation: 'test',
        config: { exclusive: true },
        resourceLimit: LIMIT,
      }),
    );
    await Promise.all(
      Array.from({ length: LIMIT + 2 }, () =>
        h.services.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap),
      ),
    );
    await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === LIMIT, 60_000);
    let held = await heldUnits(blueprint.id);
    expect(held.size).toBe(LIMIT);
    expect([...held.keys()].every((unit) => unit < LIMIT)).toBe(true);
    expect(await h.db.prisma.resource.count({ where: { status: { not: 'DESTROYED' } } })).toBe(LIMIT);
    const waiting = await h.db.prisma.lease.findMany({ where: { status: 'PENDING' } });
    expect(waiting).toHaveLength(2);

    // Free the two lowest units: the window (from the live count on) holds neither.
    for (const unit of [0, 1]) {
      expect(held.has(unit)).toBe(true);
      unwrap(await h.services.resources.release(h.system, held.get(unit)!));
    }
    for (const lease of waiting) await waitForLease(h, lease.id, ['ACTIVE'], 30_000);
    held = await heldUnits(blueprint.id);
    expect(held.size).toBe(LIMIT);
    expect(held.has(0) && held.has(1)).toBe(true);
    expect(await h.db.prisma.resource.count({ where: { status: { not: 'DESTROYED' } } })).toBe(LIMIT);
  }, 90_000);
});
