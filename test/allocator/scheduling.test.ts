import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import type { Lease } from '../../src/generated/prisma/client.js';
import { ensurePrincipal, type Actor } from '../../src/services/index.js';
import { describeEachDatabase } from '../support/database.js';
import { createHarness, hostPoolConfig, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { HEADS_PER_DEMAND, OLDEST_PER_PASS } from '../../src/allocator/scheduler/read.js';

// The scheduling pass's policies (drydock-spec.md, "Scheduling"): leases are queued while no
// worker runs, so that the first pass sees them all at once and its grant order (the order of
// their lease-acquired logs) is the policy's.

const AGING_MS = 60_000;

describeEachDatabase('scheduling policies', (kind) => {
  let h: Harness;
  let stopWorker: (() => Promise<void>) | null = null;
  // The allocator's clock, set back by tests of aging to make leases that have waited long (set
  // back, not forward: jobs are due by it and the queue runs them by the real time).
  let offsetMs = 0;
  beforeAll(async () => {
    h = await createHarness(kind, {
      allocator: { agingIntervalMs: AGING_MS, clock: () => new Date(Date.now() + offsetMs) },
    });
  });
  afterAll(() => h.dispose());
  beforeEach(async () => {
    offsetMs = 0;
    await h.reset();
  });
  afterEach(async () => {
    await stopWorker?.();
    stopWorker = null;
  });

  const start = () => (stopWorker = h.services.worker.start({ concurrency: 4 }).stop);
  const slots = (maxResources: number, extra: Record<string, unknown> = {}, name = 'slots') =>
    h.services.blueprints
      .create(h.system, { name, implementation: 'test', config: { exclusive: true, maxResources, ...extra } })
      .then(unwrap);
  const request = (
    fields: {
      priority?: number;
      attributes?: Record<string, unknown>;
      waitTimeoutSeconds?: number;
      until?: Date;
      blueprintIds?: number[];
    } = {},
    actor: Actor = h.system,
  ) => h.services.leases.request(actor, { resourceType: 'test-slot', ...fields }).then(unwrap);
  /** A user authorized on every blueprint there is. */
  async function user(name: string): Promise<Actor> {
    const actor = await ensurePrincipal(h.db, { name, kind: 'USER' });
    for (const blueprint of await h.db.prisma.blueprint.findMany()) {
      const asked = unwrap(
        await h.services.authorizations.request(h.system, {
          blueprintId: blueprint.id,
          principalId: actor.principalId,
        }),
      );
      unwrap(await h.services.authorizations.set(h.system, { authorizationId: asked.id, state: 'AUTHORIZED' }));
    }
    return actor;
  }
  const current = (lease: Lease) => h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } });

  /** Lease ids in the order they were granted (their lease-acquired logs). */
  async function grantOrder(): Promise<number[]> {
    const logs = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    return logs.map((l) => l.leaseId!);
  }

  /** Resolves once every lease of `leases` is PENDING with a blocker (the pass has looked). */
  async function waiting(leases: Lease[], reason?: string): Promise<void> {
    for (const lease of leases) {
      await until(
        async () => {
          const now = await current(lease);
          return now.status === 'PENDING' && now.blocker !== null && (!reason || blockerReason(now) === reason);
        },
        `lease ${lease.id} waiting${reason ? ` (${reason})` : ''}`,
      );
    }
  }

  /**
   * Serves every lease through capacity that frees one unit at a time: each lease is released as
   * soon as it is ACTIVE. Returns the order they became ACTIVE in.
   */
  async function serveOneByOne(leases: Lease[]): Promise<number[]> {
    const order: number[] = [];
    const unsubscribe = h.events.subscribe((event) => {
      if (event.kind === 'lease' && event.status === 'ACTIVE' && !order.includes(event.leaseId)) {
        order.push(event.leaseId);
        void h.services.leases.release(h.system, event.leaseId);
      }
    });
    try {
      start();
      for (const lease of leases) await waitForLease(h, lease.id, ['DESTROYED'], 30_000);
    } finally {
      unsubscribe();
    }
    return order;
  }

  it('serves higher priority first, then arrival', async () => {
    await slots(1);
    const [a, b, c, d, e] = [
      await request(),
      await request({ priority: 5 }),
      await request({ priority: -3 }),
      await request({ priority: 5 }),
      await request(),
    ];
    expect(await serveOneByOne([a!, b!, c!, d!, e!])).toEqual([b!.id, d!.id, a!.id, e!.id, c!.id]);
  }, 60_000);

  it('a lease that waited past the aging interval goes ahead of newer higher priorities', async () => {
    await slots(1);
    offsetMs = -3 * AGING_MS;
    const old = await request();
    offsetMs = 0;
    const high = await request({ priority: 2 });
    // The old lease's band is 0 + 3 = 3, above the new lease's 2.
    expect(await serveOneByOne([old, high])).toEqual([old.id, high.id]);
  }, 60_000);

  it("an aged lease of a low priority is read among its shape's heads behind many newer higher ones", async () => {
    await slots(1, { label: 'busy' }, 'busy');
    await slots(1, { label: 'free' }, 'free');
    const holder = await request({ attributes: { label: 'busy' } });
    start();
    await waitForLease(h, holder.id, ['ACTIVE']);
    await stopWorker?.();
    stopWorker = null;
    // The first leases of the type (by id) wait for the busy slot, so that the aged lease is not
    // among the oldest a pass reads whatever their shape (they have not aged: an aged one refused
    // would keep what frees for itself); it is behind more newer leases of its own shape and a
    // higher priority than a pass reads of one shape by priority.
    for (let i = 0; i < OLDEST_PER_PASS; i++) await request({ attributes: { label: 'busy' } });
    offsetMs = -3 * AGING_MS;
    const aged = await request({ attributes: { label: 'free' }, priority: -1 });
    offsetMs = 0;
    const newer: Lease[] = [];
    for (let i = 0; i < HEADS_PER_DEMAND + 1; i++) newer.push(await request({ attributes: { label: 'free' } }));
    // Its band is -1 + 3 = 2, above the newer leases' 0: the one free slot is its.
    start();
    await waitForLease(h, aged.id, ['ACTIVE']);
    expect((await grantOrder()).slice(1, 2)).toEqual([aged.id]);
  }, 60_000);

  it("a lease behind a shape's heads that wait for other blueprints is read before a lower band takes what it could use", async () => {
    const y = await slots(1, {}, 'y');
    const x = await slots(1, { label: 'x' }, 'x');
    const holder = await request({ blueprintIds: [y.id] });
    start();
    await waitForLease(h, holder.id, ['ACTIVE']);
    // A backlog of the shape, for the held blueprint only and of a higher priority: its passes
    // refuse it without a try from now on (the oldest waiting lease's wait is settled in the epoch).
    const backlog: Lease[] = [];
    for (let i = 0; i < HEADS_PER_DEMAND; i++) backlog.push(await request({ priority: 2, blueprintIds: [y.id] }));
    await waiting(backlog);
    await stopWorker?.();
    stopWorker = null;
    // Behind it in the shape's order, one that the free blueprint serves; then a lease of another
    // shape and a lower band that the free blueprint serves too.
    const behind = await request({ priority: 1, blueprintIds: [x.id] });
    const lower = await request({ attributes: { label: 'x' } });
    start();
    await waitForLease(h, behind.id, ['ACTIVE']);
    expect((await current(lower)).status).toBe('PENDING');
  }, 60_000);

  it('fair share: the owner with fewer live leases goes first; grants in the pass count', async () => {
    await slots(5);
    const [heavy, light] = [await user('heavy'), await user('light')];
    const held = [await request({}, heavy), await request({}, heavy)];
    start();
    for (const lease of held) await waitForLease(h, lease.id, ['ACTIVE']);
    await stopWorker!();
    stopWorker = null;
    const heavyWaiting = [await request({}, heavy), await request({}, heavy), await request({}, heavy)];
    const lightWaiting = [await request({}, light), await request({}, light), await request({}, light)];
    start();
    await waiting([heavyWaiting[1]!, heavyWaiting[2]!, lightWaiting[2]!]);
    // Three free slots. Shares: heavy 2, light 0 → light, light (1, then 2), then the tie at 2 goes
    // to the older request, heavy's first.
    expect((await grantOrder()).slice(2)).toEqual([lightWaiting[0]!.id, lightWaiting[1]!.id, heavyWaiting[0]!.id]);
  }, 60_000);

  it('weights: an owner of weight 2 gets twice the share of one of weight 1', async () => {
    await slots(3);
    const [one, two] = [await user('one'), await user('two')];
    unwrap(await h.services.scheduling.setPrincipalWeight(h.system, two.principalId, 2));
    const ones = [await request({}, one), await request({}, one), await request({}, one)];
    const twos = [await request({}, two), await request({}, two), await request({}, two)];
    start();
    await waiting([ones[1]!, ones[2]!, twos[2]!]);
    // Both at 0: the older (one) first; then two (0 < 1); then two again (0.5 < 1).
    expect(await grantOrder()).toEqual([ones[0]!.id, twos[0]!.id, twos[1]!.id]);
    const refused = await h.services.scheduling.setPrincipalWeight(h.system, two.principalId, 0);
    expect(refused.ok ? null : refused.error.kind).toBe('ValidationError');
    const notAdmin = await h.services.scheduling.setPrincipalWeight(one, one.principalId, 5);
    expect(notAdmin.ok ? null : notAdmin.error.kind).toBe('NotAuthorizedError');
  }, 60_000);

  it('backfill: a lease nothing can serve now does not hold back a different one behind it', async () => {
    await slots(1, { label: 'busy' }, 'busy');
    await slots(1, { label: 'free' }, 'free');
    const holder = await request({ attributes: { label: 'busy' } });
    start();
    await waitForLease(h, holder.id, ['ACTIVE']);
    const stuck = await request({ attributes: { label: 'busy' } });
    const behind = await request({ attributes: { label: 'free' } });
    await waitForLease(h, behind.id, ['ACTIVE']);
    expect((await current(stuck)).status).toBe('PENDING');
  }, 60_000);

  it('gangs: all parts in one pass or none; never some held while others wait; released together', async () => {
    const bp = await slots(2);
    const gang = unwrap(
      await h.services.leases.requestGang(h.system, { parts: [{ resourceType: 'test-slot', count: 3 }] }),
    );
    expect(gang).toHaveLength(3);
    start();
    await waiting(gang, 'gang-waiting');
    for (const part of gang) expect((await current(part)).status).toBe('PENDING');
    expect(await h.db.prisma.slotLock.count({ where: { ownerLeaseId: { not: null } } })).toBe(0);
    // One more slot: the next pass grants the whole gang at once.
    unwrap(await h.services.blueprints.update(h.system, bp.id, { config: { exclusive: true, maxResources: 3 } }));
    for (const part of gang) await waitForLease(h, part.id, ['ACTIVE']);
    const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    expect(new Set(acquired.map((l) => l.createdAt.getTime())).size).toBe(1);
    unwrap(await h.services.leases.release(h.system, gang[1]!.id));
    for (const part of gang) await waitForLease(h, part.id, ['DESTROYED']);
  }, 60_000);

  it('a lease still waiting at its until ends there, expired, a gang whole, and an aged one frees what it reserved', async () => {
    await slots(1);
    const holder = await request();
    start();
    await waitForLease(h, holder.id, ['ACTIVE']);
    const until = new Date(Date.now() + 2_000);
    // Aged, so that it reserves the slot for itself against the newer lease below.
    offsetMs = -2 * AGING_MS;
    const gang = unwrap(
      await h.services.leases.requestGang(h.system, { parts: [{ resourceType: 'test-slot', count: 2 }], until }),
    );
    offsetMs = 0;
    const single = await request({ until });
    const after = await request();
    for (const lease of [...gang, single]) await waitForLease(h, lease.id, ['DESTROYED']);
    const reasons = async (leases: Lease[]) =>
      (
        await h.db.prisma.log.findMany({
          where: { type: 'lease-released', leaseId: { in: leases.map((l) => l.id) } },
          orderBy: { leaseId: 'asc' },
        })
      ).map((l) => (l.data as { reason: string }).reason);
    expect(await reasons([single])).toEqual(['expired']);
    // The gang's parts go together: each is released, at least one for its own expiry.
    const gangReasons = await reasons(gang);
    expect(gangReasons).toHaveLength(2);
    expect(gangReasons).toContain('expired');
    // No reservation is left behind: the holder's end serves the lease that came after them.
    unwrap(await h.services.leases.release(h.system, holder.id));
    await waitForLease(h, after.id, ['ACTIVE']);
  }, 60_000);

  it('an aged gang keeps what frees for itself against newer single leases', async () => {
    await slots(2);
    const holder = await request();
    start();
    await waitForLease(h, holder.id, ['ACTIVE']);
    offsetMs = -2 * AGING_MS;
    const gang = unwrap(
      await h.services.leases.requestGang(h.system, { parts: [{ resourceType: 'test-slot', count: 2 }] }),
    );
    offsetMs = 0;
    await waiting(gang, 'gang-waiting');
    // A newer single lease could take the free slot, but the aged gang, which cannot be served
    // yet, reserves it.
    const single = await request();
    await waiting([single], 'reserved');
    expect((await current(single)).status).toBe('PENDING');
    unwrap(await h.services.leases.release(h.system, holder.id));
    for (const part of gang) await waitForLease(h, part.id, ['ACTIVE']);
    expect((await current(single)).status).toBe('PENDING');
  }, 60_000);

  it('quota: an owner never holds more than its quota of live leases; the rest waits with `quota`', async () => {
    await slots(10);
    const capped = await user('capped');
    unwrap(
      await h.services.scheduling.setQuota(h.system, {
        principalId: capped.principalId,
        resourceType: 'test-slot',
        maxLeases: 2,
      }),
    );
    const leases = [await request({}, capped), await request({}, capped), await request({}, capped)];
    start();
    await waitForLease(h, leases[0]!.id, ['ACTIVE']);
    await waitForLease(h, leases[1]!.id, ['ACTIVE']);
    await waiting([leases[2]!], 'quota');
    unwrap(await h.services.leases.release(capped, leases[0]!.id));
    await waitForLease(h, leases[2]!.id, ['ACTIVE']);
    // Removing the quota lets more through.
    const more = await request({}, capped);
    await waiting([more], 'quota');
    unwrap(
      await h.services.scheduling.setQuota(h.system, {
        principalId: capped.principalId,
        resourceType: 'test-slot',
        maxLeases: null,
      }),
    );
    await waitForLease(h, more.id, ['ACTIVE']);
  }, 60_000);

  it('quota: a gang asking for more of a type than its owner’s quota is refused, not left waiting for ever', async () => {
    await slots(10);
    const capped = await user('gang-capped');
    unwrap(
      await h.services.scheduling.setQuota(h.system, {
        principalId: capped.principalId,
        resourceType: 'test-slot',
        maxLeases: 2,
      }),
    );
    const before = await h.db.prisma.lease.count();
    const refused = await h.services.leases.requestGang(capped, {
      parts: [
        { resourceType: 'test-slot', count: 2 },
        { resourceType: 'test-slot', count: 1 },
      ],
    });
    expect(refused).toMatchObject({
      ok: false,
      error: {
        kind: 'ValidationError',
        path: ['parts', 0],
        message: 'the gang asks for 3 leases of test-slot, more than your quota of 2: it could never be granted',
      },
    });
    expect(await h.db.prisma.lease.count()).toBe(before);
    // At the quota it is a gang like any other.
    const gang = unwrap(
      await h.services.leases.requestGang(capped, { parts: [{ resourceType: 'test-slot', count: 2 }] }),
    );
    start();
    for (const part of gang) await waitForLease(h, part.id, ['ACTIVE']);
  }, 60_000);

  it('a lease still waiting after waitTimeoutSeconds breaks with wait-timeout', async () => {
    await slots(1);
    const holder = await request();
    start();
    await waitForLease(h, holder.id, ['ACTIVE']);
    const impatient = await request({ waitTimeoutSeconds: 1 });
    expect(impatient.waitUntil).not.toBeNull();
    const ended = await waitForLease(h, impatient.id, ['DESTROYED'], 10_000);
    expect(ended.statusReason).toBe('wait-timeout');
    expect((await current(holder)).status).toBe('ACTIVE');
  }, 30_000);

  it('refuses a priority out of range, and one above the default without the right to', async () => {
    const someone = await user('someone');
    const high = await h.services.leases.request(someone, { resourceType: 'test-slot', priority: 3 });
    expect(high.ok ? null : high.error.kind).toBe('NotAuthorizedError');
    const tooHigh = await h.services.leases.request(h.system, { resourceType: 'test-slot', priority: 11 });
    expect(tooHigh.ok ? null : tooHigh.error).toMatchObject({ kind: 'ValidationError', path: ['priority'] });
    const low = await h.services.leases.request(someone, { resourceType: 'test-slot', priority: -2 });
    expect(low.ok).toBe(true);
    expect(await h.db.prisma.lease.count()).toBe(1);
  });

  it('a host pool: the pass grants its waiting host leases in priority order, acquired then activated', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'hosts',
        implementation: 'host-pool',
        config: hostPoolConfig(1),
        resourceLimit: 1,
      }),
    );
    const hostLease = (priority: number) =>
      h.services.leases.request(h.system, { resourceType: 'host', priority }).then(unwrap);
    const leases = [await hostLease(0), await hostLease(4), await hostLease(1)];
    start();
    for (const lease of leases) await waitForLease(h, lease.id, ['ACTIVE']);
    // Host leases share the host: one pass grants all three, in priority order.
    expect(await grantOrder()).toEqual([leases[1]!.id, leases[2]!.id, leases[0]!.id]);
    const types = await h.db.prisma.log.findMany({ where: { leaseId: leases[0]!.id }, orderBy: { id: 'asc' } });
    expect(types.map((l) => l.type).slice(-2)).toEqual(['lease-acquired', 'lease-activated']);
    // Written together, each grant still took the host's next fence, in grant order.
    const rows = await h.db.prisma.lease.findMany({ where: { id: { in: leases.map((l) => l.id) } } });
    const fence = (id: number) => rows.find((r) => r.id === id)!.fence;
    expect([leases[1]!, leases[2]!, leases[0]!].map((l) => fence(l.id))).toEqual([1, 2, 3]);
    const host = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: rows[0]!.resourceId! } });
    expect(host.fenceCounter).toBe(3);
  }, 60_000);

  it('the queue shows the order the next pass will use, anonymous to other owners', async () => {
    await slots(1);
    const holder = await request();
    start();
    await waitForLease(h, holder.id, ['ACTIVE']);
    const other = await user('other');
    const low = await request({ priority: -1 });
    const mine = await request({}, other);
    const high = await request({ priority: 3 });
    await waiting([low, mine, high]);
    const forAdmin = unwrap(await h.services.scheduling.queue(h.system, 'test-slot', 10));
    expect(forAdmin.map((e) => e.lease?.id)).toEqual([high.id, mine.id, low.id]);
    expect(forAdmin.map((e) => e.position)).toEqual([1, 2, 3]);
    const forOther = unwrap(await h.services.scheduling.queue(other, 'test-slot', 10));
    expect(forOther.map((e) => e.lease?.id ?? null)).toEqual([null, mine.id, null]);
    expect(forOther[0]!.blocker).toEqual({ reason: forAdmin[0]!.blocker!.reason });
    expect(await h.services.scheduling.position(mine)).toBe(2);
  }, 60_000);
});

function blockerReason(lease: Lease): string | undefined {
  return (lease.blocker as { reason?: string } | null)?.reason;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
