import { expect, it } from 'vitest';
import type { DomainEvent } from '../../src/events/domain-events.js';
import { describeEachDatabase } from '../support/database.js';
import { harnessForEachTest, logTypes, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';

// A resource that breaks while leases use it (drydock-spec.md, "Break", beyond Drydock): its health
// check fails, it goes BROKEN → DESTROYED, and every lease on it goes BROKEN → DESTROYED too.

const CHECK_MS = 150;

describeEachDatabase('broken resources', (kind) => {
  let h: Harness;
  const worker = harnessForEachTest(kind, (made) => (h = made), { allocator: { healthCheckIntervalMs: CHECK_MS } });

  const request = () => h.services.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap);

  async function eventually(what: string, done: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** The statuses an object's events went through, in order (a waiting lease logs while PENDING). */
  const statusesOf = (events: DomainEvent[], match: (e: DomainEvent) => boolean) =>
    events
      .filter(match)
      .map((e) => ('status' in e ? e.status : null))
      .filter((status, i, all) => i === 0 || status !== all[i - 1]);

  it('a failed health check breaks the resource and every active lease on it; a waiting lease gets a new one', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'shared',
        implementation: 'test',
        config: { leasesPerResource: 2 },
        resourceLimit: 1,
      }),
    );
    const a = await request();
    const b = await request();
    const activeA = await waitForLease(h, a.id, ['ACTIVE']);
    const activeB = await waitForLease(h, b.id, ['ACTIVE']);
    const broken = activeA.resourceId!;
    expect(activeB.resourceId).toBe(broken);
    const c = await request();
    await eventually('the third lease waits', async () => {
      const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: c.id } });
      return lease.status === 'PENDING' && lease.blocker !== null;
    });
    // Checked periodically by a delayed job while nothing else happens to it.
    await eventually('two health checks', () => (h.control.calls['checkResource'] ?? 0) >= 2);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: c.id } })).status).toBe('PENDING');
    const limitLock = await h.db.prisma.slotLock.findFirstOrThrow({ where: { ownerResourceId: broken } });

    h.control.checkFailures.set(broken, ['permanent']);
    const destroyedA = await waitForLease(h, a.id, ['DESTROYED']);
    const destroyedB = await waitForLease(h, b.id, ['DESTROYED']);
    const served = await waitForLease(h, c.id, ['ACTIVE']);
    expect(served.resourceId).not.toBe(broken);

    for (const lease of [destroyedA, destroyedB]) {
      expect(lease.statusReason).toBe('resource-broken');
      // (Before that, B may have lost the allocation race to A and waited: that part varies.)
      expect((await logTypes(h, { leaseId: lease.id })).slice(-3)).toEqual([
        'lease-activated',
        'lease-broken',
        'lease-destroyed',
      ]);
      const log = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-broken' } });
      expect(log.data).toEqual({
        reason: 'resource-broken',
        message: `resource ${broken} broke: health check of resource ${broken} failed (test: permanent)`,
      });
    }
    const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: broken } });
    expect(resource).toMatchObject({ status: 'DESTROYED', statusReason: 'resource-broken' });
    const resourceLogs = await h.db.prisma.log.findMany({
      where: { resourceId: broken, leaseId: null },
      orderBy: { id: 'asc' },
    });
    expect(resourceLogs.map((l) => l.type)).toEqual(['resource-activated', 'resource-broken', 'resource-destroyed']);
    expect(resourceLogs[1]!.data).toEqual({
      reason: 'health-check-failed',
      message: `health check of resource ${broken} failed (test: permanent)`,
    });
    expect(h.control.calls['destroyResource']).toBe(1);
    expect(h.control.calls['destroyLease']).toBe(2);
    // The broken resource's limit unit went with it and served the replacement.
    expect(await h.db.prisma.slotLock.count({ where: { ownerResourceId: broken } })).toBe(0);
    expect(await h.db.prisma.slotLock.findFirst({ where: { ownerResourceId: served.resourceId! } })).toMatchObject({
      key: limitLock.key,
    });

    // The owners see it on their subscriptions: events, after commit, each naming its log.
    const events = h.events.events;
    for (const lease of [a, b])
      expect(statusesOf(events, (e) => e.kind === 'lease' && e.leaseId === lease.id)).toEqual([
        'PENDING',
        'ACQUIRED',
        'ACTIVE',
        'BROKEN',
        'DESTROYED',
      ]);
    expect(statusesOf(events, (e) => e.kind === 'resource' && e.resourceId === broken)).toEqual([
      'PENDING',
      'ACTIVE',
      'BROKEN',
      'DESTROYED',
    ]);
    for (const event of events.filter((e) => 'status' in e && (e.status === 'BROKEN' || e.status === 'DESTROYED')))
      expect(await h.db.prisma.log.findUnique({ where: { id: BigInt(event.logId!) } })).not.toBeNull();
  });

  it('a temporary health check failure is logged and retried; the lease slot locks go when it breaks', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'exclusive',
        implementation: 'test',
        config: { exclusive: true },
        resourceLimit: 1,
      }),
    );
    const a = await request();
    const active = await waitForLease(h, a.id, ['ACTIVE']);
    const resourceId = active.resourceId!;
    const next = await request();
    await eventually('the next lease waits for the slot', async () => {
      const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: next.id } });
      return (lease.blocker as { reason?: string } | null)?.reason === 'slot-lock-failure';
    });
    expect(await h.db.prisma.slotLock.findMany({ where: { ownerLeaseId: a.id } })).toMatchObject([
      { key: `test.lease(${resourceId})` },
    ]);

    h.control.checkFailures.set(resourceId, ['temporary', 'temporary']);
    await eventually('two temporary failures logged', async () => {
      const n = await h.db.prisma.log.count({ where: { resourceId, type: 'resource-check-failed-temporarily' } });
      return n === 2;
    });
    // Still serving: a temporary failure breaks nothing.
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } })).status).toBe('ACTIVE');
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: a.id } })).status).toBe('ACTIVE');

    h.control.checkFailures.set(resourceId, ['permanent']);
    expect((await waitForLease(h, a.id, ['DESTROYED'])).statusReason).toBe('resource-broken');
    expect(await h.db.prisma.slotLock.count({ where: { ownerLeaseId: a.id } })).toBe(0);
    const served = await waitForLease(h, next.id, ['ACTIVE']);
    expect(served.resourceId).not.toBe(resourceId);
    expect(await h.db.prisma.slotLock.findMany({ where: { ownerLeaseId: next.id } })).toMatchObject([
      { key: `test.lease(${served.resourceId})` },
    ]);
  });

  it('a resource released while its health check runs is not broken by the late verdict', async () => {
    unwrap(await h.services.blueprints.create(h.system, { name: 'test', implementation: 'test', config: {} }));
    const a = await request();
    const resourceId = (await waitForLease(h, a.id, ['ACTIVE'])).resourceId!;
    await worker.stop();
    let open = () => {};
    h.control.checkGate = new Promise((resolve) => (open = resolve));
    h.control.checkFailures.set(resourceId, ['permanent']);
    const before = h.control.calls['checkResource'] ?? 0;
    const checking = h.services.worker.runUpdate('resource', resourceId);
    await eventually('the check started', () => (h.control.calls['checkResource'] ?? 0) > before);
    // The check holds no lock: the resource's release goes through while it runs.
    unwrap(await h.services.resources.release(h.system, resourceId));
    await h.services.worker.runUpdate('resource', resourceId);
    open();
    await checking;
    // Released, and destroyed only once its lease has ended (that takes the lease's own update).
    expect(await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } })).toMatchObject({
      status: 'RELEASED',
    });
    worker.start();
    expect((await waitForLease(h, a.id, ['DESTROYED'])).statusReason).toBe('resource-released');
    await eventually('the resource destroyed', async () => {
      const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
      return resource.status === 'DESTROYED' && resource.statusReason === 'resource-released';
    });
    expect(await logTypes(h, { resourceId })).not.toContain('resource-broken');
  });
});
