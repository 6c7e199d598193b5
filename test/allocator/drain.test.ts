import { beforeEach, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/database.js';
import {
  harnessForEachTest,
  hostPoolConfig,
  unwrap,
  waitForLease,
  type Harness,
} from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A draining resource takes no new lease while its leases run to their end; undrained, it takes
// leases again; drained with `release`, it goes once its last lease has.
describeEachDatabase('resource drain', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));
  beforeEach(async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hostPoolConfig(1),
      }),
    );
  });

  const request = () => h.services.leases.request(h.system, { resourceType: 'host' }).then(unwrap);
  const acquiredOn = (resourceId: number) => h.db.prisma.log.count({ where: { resourceId, type: 'lease-acquired' } });

  it('a draining resource never grants; undrained, it grants again', async () => {
    const first = await request();
    const resourceId = (await waitForLease(h, first.id, ['ACTIVE'])).resourceId!;
    const drained = unwrap(await h.services.resources.setDraining(h.system, resourceId, { release: false }));
    expect(drained.drainingAt).not.toBeNull();

    const waiting = await Promise.all(Array.from({ length: 20 }, request));
    const ids = waiting.map((l) => l.id);
    // The head of the queue is told why it waits (draining); the others wait behind it.
    await waitFor(async () => {
      const leases = await h.db.prisma.lease.findMany({ where: { id: { in: ids } } });
      const reasons = leases.map((l) => (l.blocker as { reason?: string } | null)?.reason);
      return (
        leases.every((l) => l.status === 'PENDING') &&
        reasons.includes('draining') &&
        reasons.every((r) => r === 'draining' || r === 'queued-behind')
      );
    });
    // The lease on it runs on; its end frees nothing for the waiting ones.
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: first.id } })).status).toBe('ACTIVE');
    unwrap(await h.services.leases.release(h.system, first.id));
    await waitForLease(h, first.id, ['DESTROYED']);
    // The pass its end asked for (committed with it) has run, and granted nothing.
    await waitFor(
      async () =>
        (await h.db.prisma.job.count({
          where: { kind: 'SCHEDULING_PASS', OR: [{ lockedBy: { not: null } }, { runAt: { lte: new Date() } }] },
        })) === 0,
    );
    expect(await h.db.prisma.lease.count({ where: { id: { in: ids }, status: 'PENDING' } })).toBe(ids.length);
    expect(await acquiredOn(resourceId)).toBe(1);
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } })).status).toBe('ACTIVE');

    unwrap(await h.services.resources.setDraining(h.system, resourceId, null));
    for (const id of ids) expect((await waitForLease(h, id, ['ACTIVE'])).resourceId).toBe(resourceId);
    expect(await acquiredOn(resourceId)).toBe(1 + ids.length);
    const logs = await h.db.prisma.log.findMany({
      where: { resourceId, type: { in: ['resource-draining', 'resource-undrained'] } },
    });
    expect(logs.map((l) => l.type)).toEqual(['resource-draining', 'resource-undrained']);
  });

  it('drained with release: its leases run to their end, then it is released', async () => {
    const leases = await Promise.all(Array.from({ length: 3 }, request));
    const resourceId = (await waitForLease(h, leases[0]!.id, ['ACTIVE'])).resourceId!;
    for (const lease of leases) await waitForLease(h, lease.id, ['ACTIVE']);
    unwrap(await h.services.resources.setDraining(h.system, resourceId, { release: true }));
    for (const [i, lease] of leases.entries()) {
      unwrap(await h.services.leases.release(h.system, lease.id));
      await waitForLease(h, lease.id, ['DESTROYED']);
      const released = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-released' } });
      expect(released.data).toEqual({ reason: 'command' });
      const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
      if (i < leases.length - 1) expect(resource.status).toBe('ACTIVE');
    }
    await waitFor(
      async () => (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } })).status === 'DESTROYED',
    );
    const released = await h.db.prisma.log.findFirstOrThrow({ where: { resourceId, type: 'resource-released' } });
    expect(released.data).toEqual({ reason: 'drained' });
  });

  it('refuses a drain of a resource that is not live or does not exist', async () => {
    const lease = await request();
    const resourceId = (await waitForLease(h, lease.id, ['ACTIVE'])).resourceId!;
    unwrap(await h.services.resources.release(h.system, resourceId));
    await waitFor(
      async () => (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } })).status === 'DESTROYED',
    );
    const refused = await h.services.resources.setDraining(h.system, resourceId, { release: false });
    expect(refused).toMatchObject({ ok: false, error: { kind: 'ValidationError', path: ['id'] } });
    expect(await h.services.resources.setDraining(h.system, 999_999, null)).toMatchObject({
      ok: false,
      error: { kind: 'NotFoundError' },
    });
  });
});
