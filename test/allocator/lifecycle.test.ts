import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';
import {
  createHarness,
  harnessForEachTest,
  hostPoolConfig,
  logTypes,
  unwrap,
  waitForLease,
  type Harness,
} from '../support/allocator-harness.js';

describeEachDatabase('lease and resource lifecycle', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  const testBlueprint = (config: Record<string, unknown> = {}, extra: { resourceLimit?: number; name?: string } = {}) =>
    h.services.blueprints
      .create(h.system, {
        name: extra.name ?? 'test',
        implementation: 'test',
        config,
        ...(extra.resourceLimit ? { resourceLimit: extra.resourceLimit } : {}),
      })
      .then(unwrap);

  it('activates a host-pool lease immediately, with one resource per binding and its interfaces', async () => {
    const blueprint = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hostPoolConfig(2),
      }),
    );
    expect(blueprint.resourceType).toBe('host');
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'host' }));
    expect(lease.status).toBe('PENDING');
    const active = await waitForLease(h, lease.id, ['ACTIVE', 'BROKEN', 'DESTROYED']);
    expect(active.status).toBe('ACTIVE');
    expect(await logTypes(h, { leaseId: lease.id })).toEqual([
      'lease-requested',
      'resource-allocated',
      'lease-acquired',
      'lease-activated',
    ]);
    const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: active.resourceId! } });
    expect(resource.status).toBe('ACTIVE');
    expect(await h.db.prisma.slotLock.findMany({ where: { ownerResourceId: resource.id } })).toMatchObject([
      { key: `host-pool.binding(${blueprint.id}/build/host0)` },
    ]);
    expect(unwrap(await h.services.leases.interfaces(h.system, lease.id))).toEqual({
      ssh: { host: '10.0.0.1', port: 22 },
      // How a device or agent checks that this lease still holds the resource.
      fencing: { fence: 1, leaseId: lease.id, resourceId: resource.id },
    });
    // The second lease prefers the free second host (supplemental resources wanted).
    const second = unwrap(await h.services.leases.request(h.system, { resourceType: 'host' }));
    const secondActive = await waitForLease(h, second.id, ['ACTIVE']);
    expect(secondActive.resourceId).not.toBe(active.resourceId);
    // A third shares the least-loaded host: there are only two bindings.
    const third = await waitForLease(
      h,
      unwrap(await h.services.leases.request(h.system, { resourceType: 'host' })).id,
      ['ACTIVE'],
    );
    expect([active.resourceId, secondActive.resourceId]).toContain(third.resourceId);
    expect(await h.db.prisma.resource.count()).toBe(2);
  });

  it('publishes events only after commit, with log ids as strings', async () => {
    await testBlueprint();
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    await waitForLease(h, lease.id, ['ACTIVE']);
    const leaseEvents = h.events.events.filter((e) => e.kind === 'lease' && e.leaseId === lease.id);
    expect(leaseEvents.map((e) => (e.kind === 'lease' ? e.status : ''))).toEqual(['PENDING', 'ACQUIRED', 'ACTIVE']);
    for (const event of leaseEvents) {
      expect(typeof event.logId).toBe('string');
      expect(await h.db.prisma.log.findUnique({ where: { id: BigInt(event.logId!) } })).not.toBeNull();
    }
  });

  it('breaks a lease nothing can serve, with a log that says why', async () => {
    const none = unwrap(await h.services.leases.request(h.system, { resourceType: 'nothing' }));
    const broken = await waitForLease(h, none.id, ['DESTROYED']);
    expect(broken.statusReason).toBe('no-blueprints');
    expect(await logTypes(h, { leaseId: none.id })).toEqual(['lease-requested', 'lease-broken', 'lease-destroyed']);

    await h.services.blueprints.create(h.system, {
      name: 'pool',
      implementation: 'host-pool',
      config: hostPoolConfig(1, { platform: 'linux' }),
    });
    const mac = unwrap(
      await h.services.leases.request(h.system, { resourceType: 'host', attributes: { platform: 'macos' } }),
    );
    expect((await waitForLease(h, mac.id, ['DESTROYED'])).statusReason).toBe('cannot-ever-allocate');
    const linux = unwrap(
      await h.services.leases.request(h.system, { resourceType: 'host', attributes: { platform: 'linux' } }),
    );
    expect((await waitForLease(h, linux.id, ['ACTIVE'])).status).toBe('ACTIVE');
  });

  it('allocates now and activates later without holding the lease in a lock', async () => {
    await testBlueprint({ activation: 'later' });
    h.control.gated = true;
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const acquired = await waitForLease(h, lease.id, ['ACQUIRED']);
    const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: acquired.resourceId! } });
    expect(resource.status).toBe('PENDING');
    // While the setup waits, the lease can still be read and written (no lock held across the wait).
    await h.db.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "Lease" WHERE id = ${lease.id} FOR UPDATE NOWAIT`;
    });
    h.control.opened.add(resource.id);
    const active = await waitForLease(h, lease.id, ['ACTIVE']);
    expect(active.resourceId).toBe(resource.id);
    expect(await logTypes(h, { resourceId: resource.id })).toEqual(
      expect.arrayContaining(['resource-allocated', 'resource-activated']),
    );
  });

  it('retries a temporary allocation failure and then succeeds', async () => {
    await testBlueprint();
    h.control.allocateFailures.push('temporary', 'temporary');
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    await waitForLease(h, lease.id, ['ACTIVE']);
    expect(h.control.calls['allocateResource']).toBe(3);
    const types = await logTypes(h, { leaseId: lease.id });
    expect(types.filter((t) => t === 'allocation-failed-temporarily')).toHaveLength(2);
    expect(types).toContain('waiting-for-resources');
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).attempts).toBe(0);
  });

  it('breaks the lease on a permanent allocation failure', async () => {
    await testBlueprint();
    h.control.allocateFailures.push('permanent');
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const destroyed = await waitForLease(h, lease.id, ['DESTROYED']);
    expect(destroyed.statusReason).toBe('allocation-failed');
    const broken = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-broken' } });
    expect(broken.data).toMatchObject({ message: 'allocate failed (test: permanent)' });
  });

  it('retries a temporary activation failure; a permanent one breaks the resource and its leases', async () => {
    await testBlueprint({ activation: 'later' });
    h.control.activateFailures.push('temporary');
    const first = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const active = await waitForLease(h, first.id, ['ACTIVE']);
    expect(await logTypes(h, { resourceId: active.resourceId! })).toContain('resource-activation-failed-temporarily');

    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'doomed',
        implementation: 'test',
        resourceType: 'doomed',
        config: { activation: 'later' },
      }),
    );
    h.control.activateFailures.push('permanent');
    const doomed = unwrap(await h.services.leases.request(h.system, { resourceType: 'doomed' }));
    // The lease was ACQUIRED on the resource that broke: it goes back to PENDING and builds another.
    const recovered = await waitForLease(h, doomed.id, ['ACTIVE']);
    expect(await logTypes(h, { leaseId: doomed.id })).toContain('lease-reacquiring');
    // The broken resource's destruction is its own job: it may still be BROKEN when the lease is ACTIVE.
    const resources = await waitFor(async () => {
      const rows = await h.db.prisma.resource.findMany({ where: { type: 'doomed' }, orderBy: { id: 'asc' } });
      return rows[0]?.status === 'DESTROYED' ? rows : null;
    });
    expect(resources.map((r) => r.status)).toEqual(['DESTROYED', 'ACTIVE']);
    expect(resources[0]!.statusReason).toBe('resource-broken');
    expect(recovered.resourceId).toBe(resources[1]!.id);
  });

  it('releases a lease: RELEASED then DESTROYED, hooks called, slot locks gone', async () => {
    await testBlueprint({ exclusive: true });
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    await waitForLease(h, lease.id, ['ACTIVE']);
    expect(await h.db.prisma.slotLock.count({ where: { ownerLeaseId: lease.id } })).toBe(1);
    unwrap(await h.services.leases.release(h.system, lease.id));
    await waitForLease(h, lease.id, ['DESTROYED']);
    expect(await logTypes(h, { leaseId: lease.id })).toEqual([
      'lease-requested',
      'resource-allocated',
      'lease-acquired',
      'lease-activated',
      'lease-release-requested',
      'lease-released',
      'lease-destroyed',
    ]);
    expect(await h.db.prisma.slotLock.count({ where: { ownerLeaseId: lease.id } })).toBe(0);
    expect(h.control.calls['didReleaseLease']).toBe(1);
    expect(h.control.calls['destroyLease']).toBe(1);
    const again = await h.services.leases.release(h.system, lease.id);
    expect(again).toMatchObject({
      ok: false,
      error: { kind: 'IllegalTransitionError', from: 'DESTROYED', to: 'RELEASED' },
    });
  });

  it('releasing a resource releases its leases first (resource-released), then destroys it', async () => {
    await testBlueprint({}, { resourceLimit: 1 });
    const a = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const b = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const activeA = await waitForLease(h, a.id, ['ACTIVE']);
    await waitForLease(h, b.id, ['ACTIVE']);
    const resourceId = activeA.resourceId!;
    unwrap(await h.services.resources.release(h.system, resourceId));
    for (const lease of [a, b]) {
      expect((await waitForLease(h, lease.id, ['DESTROYED'])).statusReason).toBe('resource-released');
      const released = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-released' } });
      expect(released.data).toEqual({ reason: 'resource-released' });
    }
    await waitFor(async () => {
      const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
      return resource.status === 'DESTROYED';
    });
    // Every lease ended before the resource was destroyed.
    const destroyed = await h.db.prisma.log.findFirstOrThrow({ where: { resourceId, type: 'resource-destroyed' } });
    const leaseEnds = await h.db.prisma.log.findMany({
      where: { leaseId: { in: [a.id, b.id] }, type: 'lease-destroyed' },
    });
    expect(leaseEnds).toHaveLength(2);
    for (const end of leaseEnds) expect(end.id).toBeLessThan(destroyed.id);
    expect(h.control.calls['destroyResource']).toBe(1);
    expect(await h.db.prisma.slotLock.count()).toBe(0);
  });

  it('a lease builds at most one pending resource at a time', async () => {
    await testBlueprint({ mysteryBox: false, activation: 'later' });
    h.control.gated = true;
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const acquired = await waitForLease(h, lease.id, ['ACQUIRED']);
    // Run the lease's update again and again while its resource is pending: no second resource.
    for (let i = 0; i < 5; i++) await h.services.worker.runUpdate('lease', lease.id);
    expect(await h.db.prisma.resource.count()).toBe(1);
    h.control.opened.add(acquired.resourceId!);
    await waitForLease(h, lease.id, ['ACTIVE']);
  });

  it('rejects illegal input with the field named', async () => {
    const bad = await h.services.blueprints.create(h.system, {
      name: 'pool',
      implementation: 'host-pool',
      config: { services: [{ name: 's', bindings: [{ name: 'h', address: 'a', port: 99999 }] }] },
    });
    expect(bad).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['config', 'services', 0, 'bindings', 0, 'port'] },
    });
    expect(
      await h.services.blueprints.create(h.system, { name: 'x', implementation: 'nope', config: {} }),
    ).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['implementation'] },
    });
    expect(await h.services.leases.request(h.system, { resourceType: '' })).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['resourceType'] },
    });
    expect(
      await h.services.leases.request(h.system, { resourceType: 'host', until: new Date(Date.now() - 1000) }),
    ).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['until'] },
    });
    expect(await h.services.leases.request(h.system, { resourceType: 'host', blueprintIds: [424242] })).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['blueprintIds', 0] },
    });
  });

  it('validates lease attributes against what the implementations yielding the type accept', async () => {
    const refused = async (resourceType: string, attributes: Record<string, unknown>) => {
      const before = await h.db.prisma.lease.count();
      const result = await h.services.leases.request(h.system, { resourceType, attributes });
      expect(await h.db.prisma.lease.count()).toBe(before);
      return result;
    };
    // host-pool yields hosts, whether or not a host-pool blueprint exists yet.
    expect(await refused('host', { platform: { name: 'linux' } })).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['attributes', 'platform'] },
    });
    expect(await refused('test-slot', { minSize: 'big' })).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['attributes', 'minSize'] },
    });
    expect(await refused('test-slot', { colour: 'red' })).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['attributes', 'colour'] },
    });
    // A blueprint may yield another type than its implementation's: that type is checked too.
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'renamed',
        implementation: 'test',
        resourceType: 'custom-slot',
        config: {},
      }),
    );
    expect(await refused('custom-slot', { minSize: -1 })).toMatchObject({
      ok: false,
      error: { kind: 'ValidationError', path: ['attributes', 'minSize'] },
    });

    const host = unwrap(
      await h.services.leases.request(h.system, { resourceType: 'host', attributes: { platform: 'linux', cores: 8 } }),
    );
    expect(host.attributes).toEqual({ platform: 'linux', cores: 8 });
    const slot = unwrap(
      await h.services.leases.request(h.system, { resourceType: 'custom-slot', attributes: { minSize: 2 } }),
    );
    expect((await waitForLease(h, slot.id, ['ACTIVE'])).status).toBe('ACTIVE');
    // Nobody yields this type: Drydock's behaviour, the lease exists and breaks saying why.
    const nobody = unwrap(
      await h.services.leases.request(h.system, { resourceType: 'nothing', attributes: { any: { thing: [1] } } }),
    );
    expect((await waitForLease(h, nobody.id, ['DESTROYED'])).statusReason).toBe('no-blueprints');
  });
});

describeEachDatabase('lease expiry', (kind) => {
  let h: Harness;
  beforeAll(async () => {
    // No safety sweep within the test's time: only the delayed job's timer can release the lease.
    h = await createHarness(kind, { worker: { sweepIntervalMs: 600_000 } });
  });
  afterAll(() => h.dispose());

  it('releases a lease within 1 s of its `until`, by a delayed job and not by polling', async () => {
    const stop = h.services.worker.start().stop;
    try {
      unwrap(await h.services.blueprints.create(h.system, { name: 'test', implementation: 'test', config: {} }));
      const until = new Date(Date.now() + 1_500);
      const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot', until }));
      await waitForLease(h, lease.id, ['ACTIVE']);
      // The expiry is a job due at `until`, waiting in the queue.
      const job = await h.db.prisma.job.findUniqueOrThrow({ where: { key: `lease:${lease.id}` } });
      expect(job.runAt.getTime()).toBe(until.getTime());
      const destroyed = await waitForLease(h, lease.id, ['DESTROYED'], 5_000);
      expect(destroyed.releasedAt!.getTime()).toBeGreaterThanOrEqual(until.getTime());
      expect(destroyed.releasedAt!.getTime() - until.getTime()).toBeLessThan(1_000);
      const released = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-released' } });
      expect(released.data).toEqual({ reason: 'expired' });
    } finally {
      await stop();
    }
  });
});
