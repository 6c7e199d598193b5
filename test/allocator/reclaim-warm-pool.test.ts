import { expect, it } from 'vitest';
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

// The operator's reclaim (reclaimResources, drydock reclaim) leaves a blueprint's warm pool its
// minReady idle resources, counted as the pool counts them (only those that could serve its warm
// attributes), and takes the rest as before. It released every idle resource, warm ones too, so
// the pool destroyed and built them again on every reclaim. Several reclaims at once ask each
// resource to go once. A waiting lease's own reclaim counts the same way.

const hosts = (oses: string[]) => ({
  services: [
    {
      name: 'build',
      bindings: oses.map((os, i) => ({
        name: `host${i}`,
        address: `10.0.0.${i + 1}`,
        port: 22,
        attributes: { os },
      })),
    },
  ],
});

describeEachDatabase('reclaim and warm pools', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  const request = async (resourceType: string, os: string) =>
    waitForLease(h, unwrap(await h.services.leases.request(h.system, { resourceType, attributes: { os } })).id, [
      'ACTIVE',
    ]);
  const release = async (leaseId: number) => {
    unwrap(await h.services.leases.release(h.system, leaseId));
    await waitForLease(h, leaseId, ['DESTROYED']);
  };

  it('leaves each blueprint minReady idle resources its pool counts as ready, and reclaims the rest', async () => {
    // Linux hosts are warm; the bsd host only a lease builds. No limit: capacity is not the point.
    const pool = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hosts(['linux', 'linux', 'linux', 'linux', 'linux', 'bsd']),
        minReady: 2,
        warmAttributes: { os: 'linux' },
      }),
    );
    // A blueprint without a pool of another type: all its idle resources go, as before.
    const plain = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'plain',
        implementation: 'host-pool',
        resourceType: 'other-host',
        config: hosts(['linux']),
      }),
    );
    await waitFor(async () => (await idleResources(h, pool.id)).length === 2 && (await noJobDue(h)));

    // Two leases take the two warm hosts and the pool builds two more; a bsd lease builds the
    // newest host, which the pool does not count (it cannot serve its warm attributes).
    const leases = [await request('host', 'linux'), await request('host', 'linux')];
    await waitFor(async () => (await idleResources(h, pool.id)).length === 2 && (await noJobDue(h)));
    leases.push(await request('host', 'bsd'), await request('other-host', 'linux'));
    for (const lease of leases) await release(lease.id);
    await waitFor(() => noJobDue(h));

    const poolIdle = await idleResources(h, pool.id);
    expect(poolIdle.map((r) => (r.attributes as { os: string }).os)).toEqual([
      'linux',
      'linux',
      'linux',
      'linux',
      'bsd',
    ]);
    const [plainHost] = await idleResources(h, plain.id);
    expect(plainHost).toBeDefined();
    expect(await resourcesBuilt(h, pool.id)).toBe(5);

    // Three reclaims at once (an operator's twice, say): each resource is asked to go once.
    const results = await Promise.all([1, 2, 3].map(() => h.services.resources.reclaim(h.system, {}).then(unwrap)));
    const reclaimed = results.flat().map((r) => r.id);
    const kept = [poolIdle[2]!.id, poolIdle[3]!.id];
    const expected = [poolIdle[0]!.id, poolIdle[1]!.id, poolIdle[4]!.id, plainHost!.id].sort((a, b) => a - b);
    expect([...reclaimed].sort((a, b) => a - b)).toEqual(expected);
    expect(await h.db.prisma.command.count({ where: { kind: 'RECLAIM' } })).toBe(expected.length);

    await waitFor(async () => {
      const gone = await h.db.prisma.resource.count({ where: { id: { in: expected }, status: 'DESTROYED' } });
      return gone === expected.length && (await noJobDue(h));
    });
    // The pool kept its two warm hosts and had nothing to build again.
    expect((await idleResources(h, pool.id)).map((r) => r.id)).toEqual(kept);
    expect(await resourcesBuilt(h, pool.id)).toBe(5);
    expect(
      await h.db.prisma.resource.count({ where: { blueprintId: pool.id, status: 'DESTROYED', id: { in: kept } } }),
    ).toBe(0);

    // Another reclaim finds nothing to take from the pool.
    expect(unwrap(await h.services.resources.reclaim(h.system, { resourceType: 'host' }))).toEqual([]);
    await waitFor(() => noJobDue(h));
    expect(await resourcesBuilt(h, pool.id)).toBe(5);
  });

  it('keeps the newest idle resources up to minReady, and none once minReady is 0', async () => {
    const pool = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hosts(['linux', 'linux', 'linux']),
        minReady: 1,
        warmAttributes: { os: 'linux' },
      }),
    );
    await waitFor(async () => (await idleResources(h, pool.id)).length === 1 && (await noJobDue(h)));
    // Three hosts, one leased: two idle, one of which the pool keeps.
    const leases = [await request('host', 'linux'), await request('host', 'linux'), await request('host', 'linux')];
    await waitFor(() => noJobDue(h));
    await release(leases[1]!.id);
    await release(leases[2]!.id);
    await waitFor(() => noJobDue(h));
    const before = await idleResources(h, pool.id);
    expect(before).toHaveLength(2);
    const builds = await resourcesBuilt(h, pool.id);

    const reclaimed = unwrap(await h.services.resources.reclaim(h.system, { resourceType: 'host' }));
    expect(reclaimed.map((r) => r.id)).toEqual([before[0]!.id]);
    await waitFor(
      async () =>
        (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: before[0]!.id } })).status === 'DESTROYED' &&
        (await noJobDue(h)),
    );
    expect((await idleResources(h, pool.id)).map((r) => r.id)).toEqual([before[1]!.id]);
    expect(await resourcesBuilt(h, pool.id)).toBe(builds);

    // With minReady lowered to 0 the pool keeps nothing: the last idle host goes too.
    unwrap(await h.services.blueprints.update(h.system, pool.id, { minReady: 0 }));
    await waitFor(() => noJobDue(h));
    expect(unwrap(await h.services.resources.reclaim(h.system, {})).map((r) => r.id)).toEqual([before[1]!.id]);
  });

  it('a waiting lease’s reclaim counts the pool’s ready resources as the pool does, and leaves it minReady', async () => {
    // A limit of three hosts: the two warm linux hosts and a mac host a lease built fill it, so a
    // bsd lease is served only by reclaiming one of them. The mac host is not ready for the pool
    // (it cannot serve its warm attributes), so it is the one to go, though it is not the oldest:
    // taking a linux host would leave the pool under minReady, to be built again once it can.
    const pool = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hosts(['linux', 'linux', 'mac', 'bsd']),
        resourceLimit: 3,
        minReady: 2,
        warmAttributes: { os: 'linux' },
      }),
    );
    await waitFor(async () => (await idleResources(h, pool.id)).length === 2 && (await noJobDue(h)));
    await release((await request('host', 'mac')).id);
    await waitFor(() => noJobDue(h));
    const idle = await idleResources(h, pool.id);
    expect(idle.map((r) => (r.attributes as { os: string }).os)).toEqual(['linux', 'linux', 'mac']);
    expect(await resourcesBuilt(h, pool.id)).toBe(3);

    const bsd = await request('host', 'bsd');
    await waitFor(() => noJobDue(h));
    const reclaimed = await h.db.prisma.log.findMany({ where: { type: 'reclaim-requested' } });
    expect(reclaimed.map((log) => log.resourceId)).toEqual([idle[2]!.id]);
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: bsd.resourceId! } })).attributes).toMatchObject(
      { os: 'bsd' },
    );
    // The pool kept its two warm hosts and had nothing to build: the one build since is the bsd host.
    expect((await idleResources(h, pool.id)).map((r) => r.id)).toEqual([idle[0]!.id, idle[1]!.id]);
    expect(await resourcesBuilt(h, pool.id)).toBe(4);
  });
});
