import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensurePrincipal, type WorkerHandle } from '../../src/services/index.js';
import { waitFor } from '../support/wait.js';
import { describeEachDatabase } from '../support/database.js';
import {
  createHarness,
  harnessForEachTest,
  logTypes,
  unwrap,
  waitForLease,
  type Harness,
} from '../support/allocator-harness.js';

// Allocation policies: request order, reclaim, authorizations, the mystery box.

describeEachDatabase('allocation policies', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  const blueprint = (config: Record<string, unknown>, resourceLimit?: number, name = 'test') =>
    h.services.blueprints
      .create(h.system, { name, implementation: 'test', config, ...(resourceLimit ? { resourceLimit } : {}) })
      .then(unwrap);
  const request = (attributes: Record<string, unknown> = {}, actor = h.system) =>
    h.services.leases.request(actor, { resourceType: 'test-slot', attributes }).then(unwrap);

  /** Resolves once the lease records what blocks it (it has tried and is waiting). */
  async function waiting(leaseId: number): Promise<Record<string, unknown>> {
    for (let i = 0; i < 500; i++) {
      const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } });
      if (lease.blocker !== null && lease.status === 'PENDING') return lease.blocker as Record<string, unknown>;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`lease ${leaseId} never waited`);
  }

  it('serves waiting leases of one type in request order; a newcomer queues behind them', async () => {
    await blueprint({ exclusive: true }, 1);
    const a = await request();
    const activeA = await waitForLease(h, a.id, ['ACTIVE']);
    const [b, c, d] = [await request(), await request(), await request()];
    const blockerB = await waiting(b.id);
    // The blocker names the lock and who holds it, for "slot held by lease A".
    expect(blockerB).toMatchObject({
      reason: 'slot-lock-failure',
      keys: [`test.lease(${activeA.resourceId})`],
      holders: [{ key: `test.lease(${activeA.resourceId})`, leaseId: a.id, resourceId: null }],
    });
    await waiting(c.id);
    await waiting(d.id);

    // Serve in a loop: every lease that becomes ACTIVE is released, and the order is recorded.
    const order: number[] = [a.id];
    const unsubscribe = h.events.subscribe((event) => {
      if (event.kind === 'lease' && event.status === 'ACTIVE' && !order.includes(event.leaseId)) {
        order.push(event.leaseId);
        void h.services.leases.release(h.system, event.leaseId);
      }
    });
    try {
      // Capacity frees up and a newcomer arrives at the same moment: it must not take the slot.
      const [, e] = await Promise.all([h.services.leases.release(h.system, a.id), request()]);
      for (const lease of [b, c, d, e]) await waitForLease(h, lease.id, ['DESTROYED'], 20_000);
      expect(order).toEqual([a.id, b.id, c.id, d.id, e.id]);
      const queued = await h.db.prisma.log.findMany({ where: { leaseId: e.id, type: 'waiting-for-resources' } });
      expect(queued.map((l) => (l.data as { reason: string }).reason)).toContain('queued-behind');
    } finally {
      unsubscribe();
    }
  }, 60_000);

  it('a different request is not held up by a queue it does not compete in', async () => {
    await blueprint({ exclusive: true, label: 'busy' }, 1, 'busy');
    await blueprint({ label: 'free' }, undefined, 'free');
    const a = await request({ label: 'busy' });
    await waitForLease(h, a.id, ['ACTIVE']);
    const b = await request({ label: 'busy' });
    await waiting(b.id);
    const other = await request({ label: 'free' });
    expect((await waitForLease(h, other.id, ['ACTIVE'])).status).toBe('ACTIVE');
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: b.id } })).status).toBe('PENDING');
  });

  it('reclaims an idle resource to build one a waiting lease of another kind can use', async () => {
    // One resource at a time; the first box is too small for the second lease.
    await blueprint({ mysteryBox: true, boxSizes: [1, 4] }, 1);
    const small = await request({ minSize: 1 });
    const first = await waitForLease(h, small.id, ['ACTIVE']);
    unwrap(await h.services.leases.release(h.system, small.id));
    await waitForLease(h, small.id, ['DESTROYED']);
    const big = await request({ minSize: 3 });
    const active = await waitForLease(h, big.id, ['ACTIVE'], 20_000);
    expect(active.resourceId).not.toBe(first.resourceId);
    expect(await logTypes(h, { leaseId: big.id })).toContain('reclaim-requested');
    const reclaimed = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: first.resourceId! } });
    expect(reclaimed.status).toBe('DESTROYED');
    const released = await h.db.prisma.log.findFirstOrThrow({
      where: { resourceId: reclaimed.id, type: 'resource-released' },
    });
    expect(released.data).toEqual({ reason: 'reclaimed' });
  });

  it('a mystery box converges: allocate, open, too small, allocate again, lease', async () => {
    await blueprint({ mysteryBox: true, activation: 'later', boxSizes: [1, 2, 5] });
    const lease = await request({ minSize: 4 });
    const active = await waitForLease(h, lease.id, ['ACTIVE'], 20_000);
    const resources = await h.db.prisma.resource.findMany({ orderBy: { id: 'asc' } });
    expect(resources.map((r) => (r.attributes as { size: number }).size)).toEqual([1, 2, 5]);
    expect(active.resourceId).toBe(resources[2]!.id);
    // Never two boxes being opened at once.
    const allocations = await h.db.prisma.log.findMany({
      where: { type: 'resource-allocated' },
      orderBy: { id: 'asc' },
    });
    const activations = await h.db.prisma.log.findMany({
      where: { type: 'resource-activated' },
      orderBy: { id: 'asc' },
    });
    for (let i = 1; i < allocations.length; i++) expect(allocations[i]!.id > activations[i - 1]!.id).toBe(true);
  });

  it('uses only blueprints authorized for the principal; admins and the system bypass; declining stops new leases only', async () => {
    const bp = await blueprint({});
    const alice = await ensurePrincipal(h.db, { name: 'alice', kind: 'USER' });
    const admin = await ensurePrincipal(h.db, { name: 'root', kind: 'USER', isAdmin: true });

    const refused = await request({}, alice);
    const destroyed = await waitForLease(h, refused.id, ['DESTROYED']);
    expect(destroyed.statusReason).toBe('no-authorizations');
    const broken = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: refused.id, type: 'lease-broken' } });
    expect(broken.data).toMatchObject({ reason: 'no-authorizations' });

    const asked = unwrap(
      await h.services.authorizations.request(alice, { blueprintId: bp.id, principalId: alice.principalId }),
    );
    const stillRefused = await request({}, alice);
    expect((await waitForLease(h, stillRefused.id, ['DESTROYED'])).statusReason).toBe('no-authorizations');

    unwrap(await h.services.authorizations.set(h.system, { authorizationId: asked.id, state: 'AUTHORIZED' }));
    const granted = await request({}, alice);
    expect((await waitForLease(h, granted.id, ['ACTIVE'])).status).toBe('ACTIVE');

    expect((await waitForLease(h, (await request({}, admin)).id, ['ACTIVE'])).status).toBe('ACTIVE');
    expect((await waitForLease(h, (await request({}, h.system)).id, ['ACTIVE'])).status).toBe('ACTIVE');

    unwrap(await h.services.authorizations.set(h.system, { authorizationId: asked.id, state: 'DECLINED' }));
    const declined = await request({}, alice);
    expect((await waitForLease(h, declined.id, ['DESTROYED'])).statusReason).toBe('no-authorizations');
    // Revoking does not release what the principal already holds.
    await h.services.worker.runUpdate('lease', granted.id);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: granted.id } })).status).toBe('ACTIVE');
  });
});

/**
 * The grace tests' start: a one-resource mystery box whose small box a lease used and released
 * just now, and a lease for a bigger box, which only a reclaim of the small one can serve.
 */
async function boxUsedJustNow(h: Harness) {
  unwrap(
    await h.services.blueprints.create(h.system, {
      name: 'box',
      implementation: 'test',
      config: { mysteryBox: true, boxSizes: [1, 4] },
      resourceLimit: 1,
    }),
  );
  const small = unwrap(
    await h.services.leases.request(h.system, { resourceType: 'test-slot', attributes: { minSize: 1 } }),
  );
  const first = await waitForLease(h, small.id, ['ACTIVE']);
  unwrap(await h.services.leases.release(h.system, small.id));
  // The grace runs from the last use the allocator recorded (its clock is this process's).
  const released = (await waitForLease(h, small.id, ['DESTROYED'])).destroyedAt!.getTime();
  const big = unwrap(
    await h.services.leases.request(h.system, { resourceType: 'test-slot', attributes: { minSize: 3 } }),
  );
  return { boxId: first.resourceId!, released, big };
}

describeEachDatabase('reclaim grace period', (kind) => {
  let h: Harness;
  let stopWorker: () => Promise<void>;
  beforeAll(async () => {
    h = await createHarness(kind, { allocator: { reclaimGraceMs: 60_000 } });
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
  });
  afterAll(async () => {
    await stopWorker();
    await h.dispose();
  });

  it('does not reclaim a resource that was used within the grace period', async () => {
    const { boxId, big } = await boxUsedJustNow(h);
    // A lease was destroyed on it just now: it waits instead of reclaiming.
    for (let i = 0; i < 200; i++) {
      const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: big.id } });
      if (lease.blocker !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await h.services.worker.runUpdate('lease', big.id);
    const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: big.id } });
    expect(lease.status).toBe('PENDING');
    expect(lease.blocker).toMatchObject({ reason: 'no-capacity' });
    expect(await logTypes(h, { leaseId: big.id })).not.toContain('reclaim-requested');
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: boxId } })).status).toBe('ACTIVE');
    // The operator's reclaim follows the same rule.
    expect(unwrap(await h.services.resources.reclaim(h.system, {}))).toEqual([]);
  });
});

describeEachDatabase('the end of a reclaim grace period', (kind) => {
  let h: Harness;
  let stopWorker: () => Promise<void>;
  beforeAll(async () => {
    // The idle retry is far off: only the wait's own time can bring the pass back in this test.
    h = await createHarness(kind, { allocator: { reclaimGraceMs: 1_500, idleRetryMs: 600_000 } });
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
  });
  afterAll(async () => {
    await stopWorker();
    await h.dispose();
  });

  it('reclaims the idle resource once its grace has run out, without waiting for the idle retry', async () => {
    const { boxId, released, big } = await boxUsedJustNow(h);
    const granted = await waitForLease(h, big.id, ['ACTIVE'], 30_000);
    // It waited for the grace, not reclaiming at once; the idle retry lies far beyond the wait above.
    expect(Date.now() - released).toBeGreaterThanOrEqual(1_500);
    expect(await logTypes(h, { leaseId: big.id })).toEqual(
      expect.arrayContaining(['waiting-for-resources', 'reclaim-requested']),
    );
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: boxId } })).status).toBe('DESTROYED');
    expect(granted.resourceId).not.toBe(boxId);
  });
});

describeEachDatabase('the end of a reclaim grace period, with a pass of the type before it', (kind) => {
  let h: Harness;
  let worker: WorkerHandle;
  beforeAll(async () => {
    // A grace long enough that the pass the test forces runs before it ends, on a busy machine too.
    h = await createHarness(kind, { allocator: { reclaimGraceMs: 5_000, idleRetryMs: 600_000 } });
    worker = h.services.worker.start({ concurrency: 4 });
  });
  afterAll(async () => {
    await worker.stop();
    await h.dispose();
  });

  const passJob = () => h.db.prisma.job.findFirst({ where: { kind: 'SCHEDULING_PASS' } });

  // A pass of the type run as its job (a retry's backoff, a rerun) before the grace ends takes
  // the job's time; passing over the waiting lease unchanged, it must ask again for the time the
  // grace ends, not only for the idle retry.
  it('reclaims the idle resource when its grace runs out, though a pass of its type ran as its job meanwhile', async () => {
    const { boxId, big } = await boxUsedJustNow(h);
    let until = 0;
    await waitFor(async () => {
      const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: big.id } });
      until = (lease.blocker as { until?: number } | null)?.until ?? 0;
      return lease.status === 'PENDING' && until > 0;
    });
    const forced = new Date();
    expect(
      (await h.db.prisma.job.updateMany({ where: { kind: 'SCHEDULING_PASS' }, data: { runAt: forced } })).count,
    ).toBe(1);
    worker.notify(forced);
    await waitFor(async () => {
      const job = await passJob();
      return job === null || (job.lockedBy === null && job.runAt.getTime() !== forced.getTime());
    });
    // The forced pass ran before the grace ended: the lease was passed over, not reclaimed for.
    expect(Date.now()).toBeLessThan(until);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: big.id } })).status).toBe('PENDING');
    const granted = await waitForLease(h, big.id, ['ACTIVE'], 30_000);
    expect(Date.now()).toBeGreaterThanOrEqual(until);
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: boxId } })).status).toBe('DESTROYED');
    expect(granted.resourceId).not.toBe(boxId);
  });
});
