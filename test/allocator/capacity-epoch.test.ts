import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { updateLease } from '../../src/allocator/lease-update.js';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describeEachDatabase } from '../support/database.js';
import { ensurePrincipal, type Actor } from '../../src/services/index.js';
import {
  bareAllocatorDeps,
  createHarness,
  queueIdOf,
  startWaitingForTurn,
  unwrap,
  withTurnHeld,
  type Harness,
} from '../support/allocator-harness.js';

// A lease whose wait is patient (only freed capacity can end it) is not tried again by passes of
// the capacity epoch it was refused in; a transaction that may free capacity moves the epoch on,
// and so does the idle retry's time. Each step changes the pool in a way a try would see: what
// the pass does with the lease shows whether it tried. No worker runs here; each pass is the
// test's own, with the type's job left as the transactions before it wrote it.

describeEachDatabase('the capacity epoch: a patient wait is tried again only once capacity may have freed', (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  const request = (label: string) =>
    h.services.leases.request(h.system, { resourceType: 'test-slot', attributes: { label } }).then(unwrap);
  async function pass(): Promise<void> {
    const queueId = await queueIdOf(h, 'test-slot');
    await runSchedulingPass(bareAllocatorDeps(h), queueId);
  }
  const lease = (id: number) => h.db.prisma.lease.findUniqueOrThrow({ where: { id } });
  const epoch = async () =>
    (
      await h.db.prisma.$queryRaw<{ epoch: number }[]>`
      SELECT "capacityEpoch" AS epoch FROM "ResourceTypeQueue" WHERE "resourceType" = 'test-slot'`
    )[0]!.epoch;
  /** A resource limit raised behind the allocator's back: capacity no transaction told it of. */
  const raiseLimitQuietly = (id: number, maxResources: number) =>
    h.db.prisma.$executeRaw`
      UPDATE "Blueprint" SET config = jsonb_set(config, '{maxResources}', to_jsonb(${maxResources}::int))
      WHERE id = ${id}`;

  async function oneWaiting() {
    const busy = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'busy',
        implementation: 'test',
        config: { label: 'busy', exclusive: true, maxResources: 1 },
      }),
    );
    const holder = await request('busy');
    await pass();
    expect((await lease(holder.id)).status).not.toBe('PENDING');
    const waiting = await request('busy');
    await pass();
    const refused = await lease(waiting.id);
    expect(refused.status).toBe('PENDING');
    expect(refused.blocker).toMatchObject({ reason: 'slot-lock-failure', epoch: await epoch() });
    return { busy, holder, waiting };
  }

  it('skips it while nothing freed, and tries it once a change that may free capacity commits', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, { name: 'free', implementation: 'test', config: { label: 'free' } }),
    );
    const { busy, waiting } = await oneWaiting();
    const before = await epoch();

    // A try would now build a second resource. Nothing told the allocator; a request of another
    // shape brings a pass, which must leave the lease alone.
    await raiseLimitQuietly(busy.id, 2);
    const other = await request('free');
    await pass();
    expect((await lease(other.id)).status).not.toBe('PENDING');
    expect((await lease(waiting.id)).status).toBe('PENDING');
    for (let i = 0; i < 3; i++) await pass();
    expect((await lease(waiting.id)).status).toBe('PENDING');
    expect(await epoch()).toBe(before);

    // Through the service, a change of the blueprint asks for the pass with capacity.
    unwrap(
      await h.services.blueprints.update(h.system, busy.id, {
        config: { label: 'busy', exclusive: true, maxResources: 2 },
      }),
    );
    await pass();
    expect(await epoch()).toBe(before + 1);
    expect((await lease(waiting.id)).status).not.toBe('PENDING');
  });

  it('tries it again once the epoch is older than the idle retry, whatever asked for the pass', async () => {
    const { busy, waiting } = await oneWaiting();
    await raiseLimitQuietly(busy.id, 2);
    await pass();
    expect((await lease(waiting.id)).status).toBe('PENDING');
    await h.db.prisma.$executeRaw`
      UPDATE "ResourceTypeQueue" SET "epochAt" = "epochAt" - make_interval(secs => ${h.services.options.idleRetryMs / 1000 + 1})`;
    await pass();
    expect((await lease(waiting.id)).status).not.toBe('PENDING');
  });

  it("the holder's release moves the epoch on, and the waiting lease gets the resource", async () => {
    const { holder, waiting } = await oneWaiting();
    unwrap(await h.services.leases.release(h.system, holder.id));
    // The release is a command the holder's own update carries out, until it is DESTROYED.
    for (let i = 0; i < 5 && (await lease(holder.id)).status !== 'DESTROYED'; i++)
      await updateLease(bareAllocatorDeps(h), holder.id);
    expect((await lease(holder.id)).status).toBe('DESTROYED');
    await pass();
    expect((await lease(waiting.id)).status).not.toBe('PENDING');
  });
});

/** The `test-slot` queue (made by its first lease), a pass of it run here, and a lease as it is now. */
async function slotQueue(h: Harness) {
  const queueId = await queueIdOf(h, 'test-slot');
  const deps = bareAllocatorDeps(h);
  return {
    queueId,
    pass: () => runSchedulingPass(deps, queueId),
    lease: (id: number) => h.db.prisma.lease.findUniqueOrThrow({ where: { id } }),
  };
}

// A capacity change that commits while a pass waits for its turn: the turn's statement read the
// job's mark before the wait, so the epoch does not move, and the pass skips the lease; the view
// of the next lease it serves shows the new mark, and the skipped lease is tried first, in that
// same pass. Needs a second connection to hold the turn: PostgreSQL only.
describe('a skipped lease is tried first once a view shows that capacity may have freed', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql');
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  /**
   * Blueprints labelled `free`, each serving any lease that asks for its label at once, and
   * `busy`, with one exclusive resource: one lease holds it and a second, which a pass has
   * refused, waits in the type's epoch. `freeCapacity` lets `busy` build a second resource.
   */
  async function oneWaiting(free: string[], owner: Actor = h.system) {
    const create = (name: string, config: Record<string, unknown>) =>
      h.services.blueprints.create(h.system, { name, implementation: 'test', config: { label: name, ...config } });
    for (const name of free) unwrap(await create(name, {}));
    const busy = unwrap(await create('busy', { exclusive: true, maxResources: 1 }));
    const request = (label: string) =>
      h.services.leases.request(owner, { resourceType: 'test-slot', attributes: { label } }).then(unwrap);
    const holder = await request('busy'); // the type's first lease makes its queue
    const { queueId, pass, lease } = await slotQueue(h);
    await pass();
    expect((await lease(holder.id)).status).toBe('ACTIVE');
    const waiting = await request('busy');
    await pass();
    expect((await lease(waiting.id)).status).toBe('PENDING');
    const freeCapacity = async () => {
      unwrap(
        await h.services.blueprints.update(h.system, busy.id, {
          config: { label: 'busy', exclusive: true, maxResources: 2 },
        }),
      );
    };
    /** A pass that waits for the turn another connection holds, while `busy` is given capacity. */
    const passMissingTheChange = () =>
      withTurnHeld(h, queueId, async () => {
        const running = await startWaitingForTurn(h, pass);
        await freeCapacity();
        return running;
      });
    return { queueId, request, pass, lease, waiting, freeCapacity, passMissingTheChange };
  }

  it('serves the skipped lease before the one behind it, in the pass whose turn missed the change', async () => {
    const { queueId, request, lease, waiting, passMissingTheChange } = await oneWaiting(['free']);
    const epoch = async () =>
      (
        await h.db.prisma.$queryRaw<{ epoch: number }[]>`
        SELECT "capacityEpoch" AS epoch FROM "ResourceTypeQueue" WHERE id = ${queueId}`
      )[0]!.epoch;
    const before = await epoch();
    const behind = await request('free');

    await passMissingTheChange();
    // The turn did not see the change: the same epoch, and yet the lease was tried and served.
    expect(await epoch()).toBe(before);
    expect((await lease(waiting.id)).status).toBe('ACTIVE');
    expect((await lease(behind.id)).status).toBe('ACTIVE');
  });

  it('stops, rather than serve a skipped lease after one behind it, when the change commits after a grant', async () => {
    const { queueId, request, pass, lease, waiting, freeCapacity } = await oneWaiting(['free', 'other']);
    const status = async (id: number) => (await lease(id)).status;

    // Behind the waiting lease: one granted from what the pass read; then one of another shape,
    // whose build commits, on another connection, a change that frees capacity for the waiting
    // lease: the mark read after that try shows it, after a grant behind the waiting lease.
    const built = await request('free');
    const behind = await request('other');
    h.control.onAllocate = async (leaseId) => {
      if (leaseId !== behind.id) return;
      h.control.onAllocate = null;
      await freeCapacity();
    };
    await pass();
    expect(await status(built.id)).toBe('ACTIVE');
    // Served now, the waiting lease would come after a lease behind it: it waits for the next
    // pass, which the stopped one asked for at once, and so does the lease whose try was undone.
    expect(await status(waiting.id)).toBe('PENDING');
    expect(await status(behind.id)).toBe('PENDING');
    const [job] = await h.db.prisma.$queryRaw<{ due: boolean }[]>`
      SELECT "runAt" <= now() AS due FROM "Job" WHERE key = ${`pass:${queueId}`}`;
    expect(job?.due).toBe(true);
    await pass();
    expect(await status(waiting.id)).toBe('ACTIVE');
    expect(await status(behind.id)).toBe('ACTIVE');
  });

  it('undoes a try during which the change commits, and serves the skipped lease first in the same pass', async () => {
    const { request, pass, lease, waiting, freeCapacity } = await oneWaiting(['free', 'other']);
    const status = async (id: number) => (await lease(id)).status;
    // The first lease behind the waiting one builds, and its build commits the change: its try
    // took something after the mark was read, and the mark read after it shows the change.
    const built = await request('free');
    const behind = await request('other');
    h.control.onAllocate = async (leaseId) => {
      if (leaseId !== built.id) return;
      h.control.onAllocate = null;
      await freeCapacity();
    };
    await pass();
    // Nothing was granted before that try: the waiting lease goes first, then the two behind it.
    for (const id of [waiting.id, built.id, behind.id]) expect(await status(id)).toBe('ACTIVE');
    const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    expect(acquired.map((l) => l.leaseId).slice(-3)).toEqual([waiting.id, built.id, behind.id]);
  });

  it("re-checks the lease it had taken once the skipped ones were served: the owner's quota holds", async () => {
    const owner = await ensurePrincipal(h.db, { name: 'quota-owner', kind: 'USER', isAdmin: true });
    unwrap(
      await h.services.scheduling.setQuota(h.system, {
        principalId: owner.principalId,
        resourceType: 'test-slot',
        maxLeases: 2,
      }),
    );
    const { request, lease, waiting, passMissingTheChange } = await oneWaiting(['free'], owner);
    // One live lease of two: the next one, of another shape, passes the quota check, and then the
    // skipped one ahead of it is served first (the change committed while the pass waited).
    const behind = await request('free');
    await passMissingTheChange();
    expect((await lease(waiting.id)).status).toBe('ACTIVE');
    const after = await lease(behind.id);
    expect(after.status).toBe('PENDING');
    expect(after.blocker).toMatchObject({ reason: 'quota' });
  });
});

// The model check with process kills found a lease past the aging bound passed over for a newer
// lease of another owner: queued behind a lease of its own demand that the pass skipped, it was
// not tried once that lease was served (capacity had freed after the turn), and the lease of
// another demand behind it took what was left.
describe('a lease queued behind a skipped one is tried once that one is served', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql');
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  it('gives freed capacity to the lease queued behind the skipped one before a lower band of another demand', async () => {
    const owner = await ensurePrincipal(h.db, { name: 'queued-owner', kind: 'USER', isAdmin: true });
    const busy = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'busy',
        implementation: 'test',
        config: { label: 'busy', exclusive: true, maxResources: 1 },
      }),
    );
    const request = (actor: Actor, priority: number) =>
      h.services.leases
        .request(actor, { resourceType: 'test-slot', attributes: { label: 'busy' }, priority })
        .then(unwrap);
    const holder = await request(h.system, 0);
    const { queueId, pass, lease } = await slotQueue(h);
    await pass();
    expect((await lease(holder.id)).status).toBe('ACTIVE');

    // One owner's two leases of one demand: the first refused (its wait records the epoch), the
    // second queued behind it without a try.
    const first = await request(owner, 2);
    const queued = await request(owner, 1);
    await pass();
    expect((await lease(first.id)).blocker).toMatchObject({ reason: 'slot-lock-failure' });
    expect((await lease(queued.id)).blocker).toMatchObject({ reason: 'queued-behind', leaseId: first.id });
    // Another principal's lease of the same attributes (another demand: its authorizations are
    // its own), of a lower band, that no pass has refused yet.
    const later = await request(h.system, 0);

    // Room for two more resources, committed while the next pass waits for its turn: the epoch
    // stays, `first` is skipped, `later`'s view shows the change.
    await withTurnHeld(h, queueId, async () => {
      const running = await startWaitingForTurn(h, pass);
      unwrap(
        await h.services.blueprints.update(h.system, busy.id, {
          config: { label: 'busy', exclusive: true, maxResources: 3 },
        }),
      );
      return running;
    });
    const statuses = async () => ({
      first: (await lease(first.id)).status,
      queued: (await lease(queued.id)).status,
      later: (await lease(later.id)).status,
    });
    expect(await statuses()).toEqual({ first: 'ACTIVE', queued: 'ACTIVE', later: 'PENDING' });
  });
});
