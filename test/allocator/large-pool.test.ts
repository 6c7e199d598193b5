import { expect, it } from 'vitest';
import { VIEW_RESOURCES } from '../../src/allocator/allocation-view.js';
import { describeEachDatabase } from '../support/database.js';
import { harnessForEachTest, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';

// A pool larger than the allocation view: an update reads only the least-loaded resources, and
// must still find the one resource that suits a lease when it is not among them.

const HOSTS = VIEW_RESOURCES + 8;

describeEachDatabase('a pool larger than the allocation view', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  // The last binding alone is in rack z.
  const pool = () =>
    h.services.blueprints
      .create(h.system, {
        name: 'big',
        implementation: 'host-pool',
        config: {
          services: [
            {
              name: 'build',
              bindings: Array.from({ length: HOSTS }, (_, i) => ({
                name: `host${i}`,
                address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
                port: 22,
                attributes: { rack: i === HOSTS - 1 ? 'z' : 'a' },
              })),
            },
          ],
        },
      })
      .then(unwrap);
  const request = (attributes: Record<string, unknown> = {}) =>
    h.services.leases.request(h.system, { resourceType: 'host', attributes }).then(unwrap);
  const bindingOf = async (resourceId: number | null) =>
    ((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId! } })).attributes as { binding: string })
      .binding;

  /** One lease per host, every binding a resource. */
  async function fill() {
    const leases = [];
    for (let i = 0; i < HOSTS; i++) leases.push(await request());
    const active = await Promise.all(leases.map((l) => waitForLease(h, l.id, ['ACTIVE'])));
    expect(new Set(active.map((l) => l.resourceId)).size).toBe(HOSTS);
    return active;
  }

  it('fills every binding, then shares the least-loaded host, oldest first', async () => {
    await pool();
    const filled = await fill();
    const first = await waitForLease(h, (await request()).id, ['ACTIVE']);
    expect(first.resourceId).toBe(Math.min(...filled.map((l) => l.resourceId!)));
    const second = await waitForLease(h, (await request()).id, ['ACTIVE']);
    expect(second.resourceId).not.toBe(first.resourceId);
    expect(await h.db.prisma.resource.count()).toBe(HOSTS);
  });

  it('finds the only suitable host when it is not among the least-loaded few', async () => {
    await pool();
    await fill();
    // Every host carries one lease: the view holds the oldest VIEW_RESOURCES, rack z is the newest.
    const lease = await waitForLease(h, (await request({ rack: 'z' })).id, ['ACTIVE']);
    expect(await bindingOf(lease.resourceId)).toBe(`build/host${HOSTS - 1}`);
  });

  it('prefers an idle host anywhere in the pool over sharing a busy one', async () => {
    await pool();
    const filled = await fill();
    const newest = filled.reduce((a, b) => (a.resourceId! > b.resourceId! ? a : b));
    unwrap(await h.services.leases.release(h.system, newest.id));
    await waitForLease(h, newest.id, ['DESTROYED']);
    const lease = await waitForLease(h, (await request()).id, ['ACTIVE']);
    expect(lease.resourceId).toBe(newest.resourceId);
  });

  it("keeps every resource's lease count equal to its live leases through grants and releases", async () => {
    await pool();
    const filled = await fill();
    const shared = await Promise.all([request(), request(), request()]);
    await Promise.all(shared.map((l) => waitForLease(h, l.id, ['ACTIVE'])));
    for (const lease of [...filled.slice(0, 5), shared[0]!])
      unwrap(await h.services.leases.release(h.system, lease.id));
    await Promise.all([...filled.slice(0, 5), shared[0]!].map((l) => waitForLease(h, l.id, ['DESTROYED'])));
    const counted = await h.db.prisma.$queryRaw<{ id: number; kept: number; live: number }[]>`
      SELECT r.id, r."leaseCount" AS kept,
        (SELECT count(*)::int FROM "Lease" l WHERE l."resourceId" = r.id AND l.status IN ('ACQUIRED', 'ACTIVE')) AS live
      FROM "Resource" r ORDER BY r.id`;
    expect(counted.length).toBe(HOSTS);
    expect(counted.filter((r) => r.kept !== r.live)).toEqual([]);
    expect(counted.reduce((sum, r) => sum + r.live, 0)).toBe(HOSTS + 3 - 6);
  });
});
