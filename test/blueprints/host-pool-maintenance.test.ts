import { expect, it } from 'vitest';
import { describeEachDatabase } from '../support/database.js';
import { harnessForEachTest, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A host-pool binding marked in maintenance drains its host: no new lease there, the leases on it
// run to their end, waiting leases say `draining`; clearing the flag undrains it. A drain an
// operator asked for is not undone by clearing the flag.
describeEachDatabase('host-pool binding maintenance', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  const config = (maintenance: boolean) => ({
    services: [{ name: 'build', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22, maintenance }] }],
  });
  const request = () => h.services.leases.request(h.system, { resourceType: 'host' }).then(unwrap);
  const blockerOf = async (leaseId: number) => {
    const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } });
    return lease.status === 'PENDING' ? ((lease.blocker as { reason?: string } | null)?.reason ?? null) : null;
  };

  it('drains the binding’s host while it is in maintenance and undrains it when cleared', async () => {
    const bp = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: config(false),
      }),
    );
    const first = await waitForLease(h, (await request()).id, ['ACTIVE']);
    const resourceId = first.resourceId!;

    unwrap(await h.services.blueprints.update(h.system, bp.id, { config: config(true) }));
    const drained = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
    expect(drained.drainingAt).not.toBeNull();
    expect(drained.drainedForMaintenance).toBe(true);
    const log = await h.db.prisma.log.findFirstOrThrow({ where: { resourceId, type: 'resource-draining' } });
    expect(log.data).toMatchObject({ release: false, maintenance: true });

    // No new lease lands on it; the one on it runs on.
    const waiting = await request();
    await waitFor(async () => (await blockerOf(waiting.id)) === 'draining');
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: first.id } })).status).toBe('ACTIVE');
    unwrap(await h.services.leases.release(h.system, first.id));
    await waitForLease(h, first.id, ['DESTROYED']);
    await waitFor(
      async () =>
        (await h.db.prisma.job.count({
          where: { OR: [{ lockedBy: { not: null } }, { runAt: { lte: new Date() } }] },
        })) === 0,
    );
    expect(await blockerOf(waiting.id)).toBe('draining');
    // No second host was built for the binding in maintenance.
    expect(await h.db.prisma.resource.count({ where: { blueprintId: bp.id } })).toBe(1);

    unwrap(await h.services.blueprints.update(h.system, bp.id, { config: config(false) }));
    const served = await waitForLease(h, waiting.id, ['ACTIVE']);
    expect(served.resourceId).toBe(resourceId);
    const back = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
    expect({ drainingAt: back.drainingAt, forMaintenance: back.drainedForMaintenance }).toEqual({
      drainingAt: null,
      forMaintenance: false,
    });
  });

  it('retires the host of a binding removed from the config: drained, released once its lease ends', async () => {
    const two = (maintenance: boolean) => ({
      services: [
        {
          name: 'build',
          bindings: [
            { name: 'h1', address: '10.0.0.1', port: 22, maintenance },
            { name: 'h2', address: '10.0.0.2', port: 22 },
          ],
        },
      ],
    });
    const bp = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: two(true),
        resourceLimit: 2,
      }),
    );
    // h1 is in maintenance: the first lease lands on h2; drop h2 from the config while it runs.
    const first = await waitForLease(h, (await request()).id, ['ACTIVE']);
    const resourceId = first.resourceId!;
    unwrap(
      await h.services.blueprints.update(h.system, bp.id, {
        config: { services: [{ name: 'build', bindings: [two(false).services[0]!.bindings[0]!] }] },
      }),
    );
    const retired = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
    expect(retired).toMatchObject({ releaseWhenDrained: true, drainedForMaintenance: true });
    expect(retired.drainingAt).not.toBeNull();
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: first.id } })).status).toBe('ACTIVE');
    // A new lease goes to h1, back in service; the retired host goes once its lease has.
    const next = await waitForLease(h, (await request()).id, ['ACTIVE']);
    expect(next.resourceId).not.toBe(resourceId);
    unwrap(await h.services.leases.release(h.system, first.id));
    await waitFor(
      async () => (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } })).status === 'DESTROYED',
    );
  });

  it('leaves a drain an operator asked for when maintenance is cleared', async () => {
    const bp = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: config(false),
      }),
    );
    const first = await waitForLease(h, (await request()).id, ['ACTIVE']);
    const resourceId = first.resourceId!;
    unwrap(await h.services.resources.setDraining(h.system, resourceId, { release: false }));
    unwrap(await h.services.blueprints.update(h.system, bp.id, { config: config(true) }));
    unwrap(await h.services.blueprints.update(h.system, bp.id, { config: config(false) }));
    const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
    expect(resource.drainingAt).not.toBeNull();
    expect(resource.drainedForMaintenance).toBe(false);
    expect(await h.db.prisma.log.count({ where: { resourceId, type: 'resource-undrained' } })).toBe(0);
  });

  it('a binding in maintenance before it has a host gets none', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, { name: 'pool', implementation: 'host-pool', config: config(true) }),
    );
    const lease = await request();
    await waitFor(async () => (await blockerOf(lease.id)) === 'no-capacity');
    expect(await h.db.prisma.resource.count()).toBe(0);
  });
});
