import { expect, it } from 'vitest';
import type { Blueprint } from '../../src/generated/prisma/client.js';
import { describeEachDatabase } from '../support/database.js';
import {
  harnessForEachTest,
  idleResources,
  noJobDue,
  resourcesBuilt,
  unwrap,
  waitForLease,
  type Harness,
} from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A blueprint's warm pool (minReady) on a host pool, through the services: it fills to minReady,
// a lease is granted on a resource it built, it refills after leases take its resources, it never
// builds past the resource limit, bad settings are refused, and reclaim leaves it its minReady.
// The reference provisioner, working copies and two processes are in warm-pool-*.test.ts.

const hosts = (n: number, attributes: (i: number) => Record<string, string> = () => ({})) => ({
  services: [
    {
      name: 'build',
      bindings: Array.from({ length: n }, (_, i) => ({
        name: `host${i}`,
        address: `10.0.0.${i + 1}`,
        port: 22,
        attributes: attributes(i),
      })),
    },
  ],
});

describeEachDatabase('warm pool', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  const request = (attributes: Record<string, unknown> = {}) =>
    h.services.leases.request(h.system, { resourceType: 'host', attributes }).then(unwrap);

  it('fills to minReady, grants on a warm host, refills after grants, never past the limit', async () => {
    const bp = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hosts(5),
        resourceLimit: 3,
        minReady: 2,
      }),
    );
    const warm = await waitFor(async () => {
      const ready = await idleResources(h, bp.id);
      return ready.length === 2 && (await noJobDue(h)) ? ready : null;
    });
    expect(await resourcesBuilt(h, bp.id)).toBe(2);

    const first = await waitForLease(h, (await request()).id, ['ACTIVE']);
    expect(warm.map((r) => r.id)).toContain(first.resourceId);
    // Granted on what was there: the build that follows is the pool's refill, not the lease's.
    const firstBuild = await h.db.prisma.log.findFirstOrThrow({
      where: { type: 'resource-allocated', resourceId: first.resourceId! },
    });
    expect(firstBuild.leaseId).toBeNull();
    expect(firstBuild.data).toMatchObject({ warmPool: true });

    await waitFor(async () => (await idleResources(h, bp.id)).length === 2 && (await noJobDue(h)));
    expect(await resourcesBuilt(h, bp.id)).toBe(3);

    // Two more take the two warm hosts; the limit (3) leaves the pool empty, not over it.
    const more = await Promise.all([request(), request()]);
    for (const lease of more) await waitForLease(h, lease.id, ['ACTIVE']);
    await waitFor(() => noJobDue(h));
    expect(await idleResources(h, bp.id)).toEqual([]);
    expect(await resourcesBuilt(h, bp.id)).toBe(3);
    expect(await h.db.prisma.resource.count({ where: { blueprintId: bp.id, status: { not: 'DESTROYED' } } })).toBe(3);
    expect(
      await h.db.prisma.log.count({ where: { type: 'warm-pool-failed', blueprintId: bp.id } }),
      'a full limit is no failure',
    ).toBe(0);

    // A lease released gives the pool a ready host back, and nothing is built for it.
    unwrap(await h.services.leases.release(h.system, first.id));
    await waitForLease(h, first.id, ['DESTROYED']);
    await waitFor(async () => (await idleResources(h, bp.id)).length === 1 && (await noJobDue(h)));
    expect(await resourcesBuilt(h, bp.id)).toBe(3);
  });

  it('setting minReady on a blueprint fills its pool; setting it to 0 builds nothing more', async () => {
    const bp = unwrap(
      await h.services.blueprints.create(h.system, { name: 'pool', implementation: 'host-pool', config: hosts(4) }),
    );
    await waitFor(() => noJobDue(h));
    expect(await resourcesBuilt(h, bp.id)).toBe(0);
    unwrap(await h.services.blueprints.update(h.system, bp.id, { minReady: 3 }));
    await waitFor(async () => (await idleResources(h, bp.id)).length === 3 && (await noJobDue(h)));
    expect(await resourcesBuilt(h, bp.id)).toBe(3);
    unwrap(await h.services.blueprints.update(h.system, bp.id, { minReady: 0 }));
    const lease = await waitForLease(h, (await request()).id, ['ACTIVE']);
    await waitFor(() => noJobDue(h));
    expect(lease.resourceId).not.toBeNull();
    expect(await resourcesBuilt(h, bp.id)).toBe(3);
  });

  it('refuses a minReady past the limit, a negative one, and warm attributes the blueprint cannot serve', async () => {
    const refused = async (input: Parameters<Harness['services']['blueprints']['create']>[1]) => {
      const result = await h.services.blueprints.create(h.system, input);
      expect(result.ok).toBe(false);
      return result.ok ? null : result.error;
    };
    const base = { name: 'pool', implementation: 'host-pool', config: hosts(3, () => ({ os: 'linux' })) };
    expect(await refused({ ...base, resourceLimit: 2, minReady: 3 })).toMatchObject({
      kind: 'ValidationError',
      path: ['minReady'],
      message: 'minReady (3) is more than the resource limit (2) allows',
    });
    expect(await refused({ ...base, minReady: -1 })).toMatchObject({
      kind: 'ValidationError',
      path: ['minReady'],
      message: 'minReady must not be negative',
    });
    expect(await refused({ ...base, minReady: 1, warmAttributes: { os: 'bsd' } })).toMatchObject({
      kind: 'ValidationError',
      path: ['warmAttributes', 'os'],
    });
    expect(await refused({ ...base, minReady: 1, warmAttributes: { os: ['linux'] } })).toMatchObject({
      kind: 'ValidationError',
      path: ['warmAttributes', 'os'],
    });
    expect(await h.db.prisma.blueprint.count()).toBe(0);

    // An edit is checked against what the blueprint ends up with, and changes nothing when refused.
    const bp: Blueprint = unwrap(
      await h.services.blueprints.create(h.system, { ...base, resourceLimit: 3, minReady: 2 }),
    );
    const lowered = await h.services.blueprints.update(h.system, bp.id, { resourceLimit: 1 });
    expect(lowered.ok ? null : lowered.error).toMatchObject({ kind: 'ValidationError', path: ['minReady'] });
    const after = await h.db.prisma.blueprint.findUniqueOrThrow({ where: { id: bp.id } });
    expect({ limit: after.resourceLimit, minReady: after.minReady }).toEqual({ limit: 3, minReady: 2 });
  });

  it('reclaim for another kind of lease keeps minReady idle resources', async () => {
    // One linux and one bsd binding, a limit of one host: a bsd lease can only be served by
    // reclaiming the warm linux host, which minReady keeps, until minReady is lowered.
    const bp = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hosts(2, (i) => ({ os: i === 0 ? 'linux' : 'bsd' })),
        resourceLimit: 1,
        minReady: 1,
        warmAttributes: { os: 'linux' },
      }),
    );
    const [warm] = await waitFor(async () => {
      const ready = await idleResources(h, bp.id);
      return ready.length === 1 && (await noJobDue(h)) ? ready : null;
    });
    const bsd = await request({ os: 'bsd' });
    await waitFor(async () => {
      const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: bsd.id } });
      return (lease.blocker as { reason?: string } | null)?.reason === 'no-capacity' && (await noJobDue(h));
    });
    expect(await h.db.prisma.command.count({ where: { targetResourceId: warm!.id } })).toBe(0);
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: warm!.id } })).status).toBe('ACTIVE');

    unwrap(await h.services.blueprints.update(h.system, bp.id, { minReady: 0 }));
    const served = await waitForLease(h, bsd.id, ['ACTIVE']);
    expect(
      (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: served.resourceId! } })).attributes,
    ).toMatchObject({ os: 'bsd' });
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: warm!.id } })).status).toBe('DESTROYED');
  });
});
