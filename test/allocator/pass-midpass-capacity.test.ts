import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { z } from 'zod';
import { defineImplementation } from '../../src/blueprints/implementation.js';
import { ensurePrincipal } from '../../src/services/index.js';
import { describeEachDatabase } from '../support/database.js';
import { createHarness, unwrap, type Harness } from '../support/allocator-harness.js';
import { roomBlueprint } from '../support/room-blueprint.js';
import { sideWindowBlueprints } from '../support/side-window.js';
import { waitFor } from '../support/wait.js';

// Regression for the bench's mixed-priority row, where one owner's leases were all served before
// the others' higher-priority ones: a pass tries each lease against the pool as it is when that
// lease's turn comes, so capacity committed while the pass runs (there: the resource limit raised
// by updateBlueprint) is refused to the leases tried before it and found by the first lease of
// another demand (another owner) tried after. The refused leases then sat behind their own stale
// failure ("queued-behind") while that owner's leases of lower priority took everything.
// Here the capacity appears right after the first refusal, as the commit did there.

/** One shared resource, which may be built only once the window is open. */
function windowBlueprint(control: { open: boolean; refusals: number }) {
  return defineImplementation<Record<string, never>>({
    key: 'window',
    resourceType: 'window',
    configSchema: z.object({}).strict(),
    canEverAllocate: () => true,
    async canAllocateNow(blueprint, _lease, queries) {
      if (!control.open) {
        control.refusals++;
        control.open = true;
        return false;
      }
      return (await queries.resources(blueprint.id, ['PENDING', 'ACTIVE'])).length === 0;
    },
    allocateResource: async () => ({ name: 'window', attributes: {}, slotLocks: [], activation: 'now' }),
    canAcquireLeaseOn: async (_b, resource) => resource.status === 'ACTIVE',
    acquireLease: () => ({ slotLocks: [] }),
    shouldAllocateSupplementalResource: () => false,
  });
}

/**
 * Room for one more resource each time a lease is refused: capacity that frees right after each
 * refusal, as a release committing just then would.
 */
function freeAfterRefusalBlueprint(control: { open: boolean; refusals: number }) {
  return roomBlueprint('frees-after-refusal', 'frees-after-refusal', async (blueprint, _lease, queries) => {
    const built = await queries.resources(blueprint.id, ['PENDING', 'ACTIVE']);
    if (built.length < control.refusals) return true;
    control.refusals++;
    return false;
  });
}

/**
 * Room for `control.room` resources, shut until a lease is first refused, whatever the lease's
 * attributes: capacity that frees right after that refusal, as a release committing just then
 * would, and which leases of any attributes could use.
 */
function opensOnceBlueprint(control: { refusals: number; room: number }) {
  return roomBlueprint('opens-once', 'opens-once', async (blueprint, _lease, queries) => {
    if (control.refusals === 0) {
      control.refusals++;
      return false;
    }
    return (await queries.resources(blueprint.id, ['PENDING', 'ACTIVE'])).length < control.room;
  });
}

/**
 * Room for `control.room` resources, which opens (from none) when the lease `control.opener` is
 * tried: capacity for several leases that frees while the pass runs, after the leases ahead of the
 * opener were refused.
 */
function openedByBlueprint(control: { opener: number; room: number }) {
  return roomBlueprint('opened-by', 'opened-by', async (blueprint, lease, queries) => {
    if (lease.id === control.opener && control.room === 0) control.room = 2;
    return (await queries.resources(blueprint.id, ['PENDING', 'ACTIVE'])).length < control.room;
  });
}

describeEachDatabase('capacity that appears while a pass runs', (kind) => {
  let h: Harness;
  const control = { open: false, refusals: 0 };
  const opening = { opener: 0, room: 0 };
  const once = { refusals: 0, room: 1 };
  beforeAll(async () => {
    h = await createHarness(kind, {
      implementations: [
        windowBlueprint(control),
        ...sideWindowBlueprints(control, 'side-window'),
        opensOnceBlueprint(once),
        freeAfterRefusalBlueprint(control),
        openedByBlueprint(opening),
      ],
    });
  });
  afterAll(() => h.dispose());
  beforeEach(() => {
    Object.assign(control, { open: false, refusals: 0 });
    Object.assign(opening, { opener: 0, room: 0 });
    Object.assign(once, { refusals: 0, room: 1 });
  });

  it('goes to the leases that were refused it a moment before, in policy order', async () => {
    await h.reset();
    unwrap(await h.services.blueprints.create(h.system, { name: 'window', implementation: 'window', config: {} }));
    // Admins need no authorization, but each is its own authorizing principal: two demands.
    const [a, b] = await Promise.all(
      ['owner-a', 'owner-b'].map((name) => ensurePrincipal(h.db, { name, kind: 'USER', isAdmin: true })),
    );
    // Queued while no worker runs, so that one pass serves them all.
    const ask = async (actor: typeof a, priority: number) =>
      unwrap(await h.services.leases.request(actor!, { resourceType: 'window', priority })).id;
    const a1 = await ask(a, 0);
    const a2 = await ask(a, 0);
    const b1 = await ask(b, -1);
    const b2 = await ask(b, -1);
    const stop = h.services.worker.start({ concurrency: 1 }).stop;
    try {
      await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === 4);
    } finally {
      await stop();
    }
    expect(control.refusals, 'the pool refused the first lease once').toBe(1);
    const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    // b1 found the window first, but the leases ahead of it were offered it first.
    expect(acquired.map((l) => l.leaseId)).toEqual([a1, a2, b1, b2]);
    // All in the one pass, with no blocker left on a lease that was served.
    expect(new Set(acquired.map((l) => l.createdAt.getTime())).size).toBe(1);
    const queuedBehind = await h.db.prisma.log.count({
      where: { type: 'waiting-for-resources', leaseId: { in: [a2, b2] } },
    });
    expect(queuedBehind).toBe(0);
  });

  it('after a grant of another shape, is kept for the leases refused it, not given to a lower band', async () => {
    await h.reset();
    for (const implementation of ['side-window', 'side-window-side'])
      unwrap(await h.services.blueprints.create(h.system, { name: implementation, implementation, config: {} }));
    const [a, b, c] = await Promise.all(
      ['owner-a', 'owner-b', 'owner-c'].map((name) => ensurePrincipal(h.db, { name, kind: 'USER', isAdmin: true })),
    );
    const ask = async (actor: typeof a, priority: number, attributes: Record<string, unknown> = {}) =>
      unwrap(await h.services.leases.request(actor!, { resourceType: 'side-window', priority, attributes })).id;
    // Policy order: a1, a2 (band 1; the window is shut, a1 is refused), c1 (band 0, another shape:
    // its grant opens the window), b1, b2 (band -1, another demand, which finds the window open).
    const a1 = await ask(a, 1);
    const a2 = await ask(a, 1);
    const c1 = await ask(c, 0, { side: true });
    const b1 = await ask(b, -1);
    const b2 = await ask(b, -1);
    const stop = h.services.worker.start({ concurrency: 1 }).stop;
    try {
      await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === 5);
    } finally {
      await stop();
    }
    expect(control.refusals, 'the pool refused the first lease once').toBe(1);
    const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    // a1 and a2 could no longer be served in order in that pass, and b1 was not given the window
    // ahead of them: the next pass served them first.
    expect(acquired.map((l) => l.leaseId)).toEqual([c1, a1, a2, b1, b2]);
    const kept = await h.db.prisma.log.findMany({ where: { type: 'waiting-for-resources', leaseId: b1 } });
    expect(kept.map((l) => (l.data as { reason: string }).reason)).toContain('reserved');
  });

  it('that frees after a lease ahead was offered the pool again goes to that lease, not a later one', async () => {
    await h.reset();
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'frees',
        implementation: 'frees-after-refusal',
        config: {},
      }),
    );
    const [a, b] = await Promise.all(
      ['owner-a', 'owner-b'].map((name) => ensurePrincipal(h.db, { name, kind: 'USER', isAdmin: true })),
    );
    const ask = async (actor: typeof a, priority: number) =>
      unwrap(await h.services.leases.request(actor!, { resourceType: 'frees-after-refusal', priority })).id;
    // a1 is refused (room for one frees); b1, another demand, would get that room, so a1 is offered
    // it first and a2 is refused (room for one more frees): that room is a2's before b1's.
    const a1 = await ask(a, 1);
    const a2 = await ask(a, 1);
    const b1 = await ask(b, 0);
    const stop = h.services.worker.start({ concurrency: 1 }).stop;
    try {
      // b1 is refused in that pass and served only once its wait is tried again: not waited for.
      await waitFor(
        async () => (await h.db.prisma.lease.count({ where: { id: { in: [a1, a2] }, status: 'ACTIVE' } })) === 2,
      );
    } finally {
      await stop();
    }
    const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    expect(acquired.map((l) => l.leaseId).slice(0, 2)).toEqual([a1, a2]);
    // Both in the first pass, the one b1 was refused in.
    const pass = acquired[0]!.createdAt.getTime();
    expect(acquired[1]!.createdAt.getTime()).toBe(pass);
    const waits = await h.db.prisma.log.findMany({ where: { type: 'waiting-for-resources', leaseId: b1 } });
    expect(waits.map((l) => l.createdAt.getTime())).toContain(pass);
  });

  it('goes to the leases refused it in policy order, with the shares its grants moved', async () => {
    await h.reset();
    const room = unwrap(
      await h.services.blueprints.create(h.system, { name: 'room', implementation: 'opened-by', config: {} }),
    );
    const [a, b, c] = await Promise.all(
      ['owner-a', 'owner-b', 'owner-c'].map((name) => ensurePrincipal(h.db, { name, kind: 'USER', isAdmin: true })),
    );
    const ask = async (actor: typeof a, blueprintIds: number[] = []) =>
      unwrap(await h.services.leases.request(actor!, { resourceType: 'opened-by', blueprintIds })).id;
    // All of band 0, the owners holding nothing. a2 names the blueprint: another demand than a1's,
    // so it is tried, not queued behind a1. The pass takes a1, a2 (owner a's share is still 0 and a2
    // is older than b1), b1, then c1, whose try opens room for two. a1 is served first; then owner
    // a holds one and owner b none, so b1 comes before a2, as the order would have taken them had
    // the room been there from the start.
    const a1 = await ask(a);
    const a2 = await ask(a, [room.id]);
    const b1 = await ask(b);
    opening.opener = await ask(c);
    const stop = h.services.worker.start({ concurrency: 1 }).stop;
    try {
      await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === 2);
    } finally {
      await stop();
    }
    const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    expect(acquired.map((l) => l.leaseId)).toEqual([a1, b1]);
    expect(await h.db.prisma.lease.count({ where: { id: { in: [a2, opening.opener] }, status: 'PENDING' } })).toBe(2);
  });
  it('goes to the lease ahead refused it, not to a lease of other attributes tried after it', async () => {
    await h.reset();
    unwrap(await h.services.blueprints.create(h.system, { name: 'once', implementation: 'opens-once', config: {} }));
    const [a, b] = await Promise.all(
      ['owner-a', 'owner-b'].map((name) => ensurePrincipal(h.db, { name, kind: 'USER', isAdmin: true })),
    );
    const ask = async (actor: typeof a, priority: number, team: string) =>
      unwrap(await h.services.leases.request(actor!, { resourceType: 'opens-once', priority, attributes: { team } }))
        .id;
    // a1 is refused, which opens room for one; b1, of other attributes, is tried next and finds it.
    const a1 = await ask(a, 1, 'a');
    const b1 = await ask(b, 0, 'b');
    const stop = h.services.worker.start({ concurrency: 1 }).stop;
    try {
      await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === 1);
      await waitFor(
        async () => (await h.db.prisma.log.count({ where: { type: 'waiting-for-resources', leaseId: b1 } })) > 0,
      );
    } finally {
      await stop();
    }
    expect(once.refusals, 'the pool refused the first lease once').toBe(1);
    const leases = await h.db.prisma.lease.findMany({ where: { id: { in: [a1, b1] } }, orderBy: { id: 'asc' } });
    expect(leases.map((l) => l.status)).toEqual(['ACTIVE', 'PENDING']);
    // In the pass that refused b1 first: the one that refused a1 a moment before.
    const acquired = await h.db.prisma.log.findFirstOrThrow({ where: { type: 'lease-acquired', leaseId: a1 } });
    const refused = await h.db.prisma.log.findFirstOrThrow({
      where: { type: 'waiting-for-resources', leaseId: b1 },
      orderBy: { id: 'asc' },
    });
    expect(refused.createdAt.getTime()).toBe(acquired.createdAt.getTime());
  });

  it('goes to the lease ahead refused it, not to a gang tried after it', async () => {
    await h.reset();
    Object.assign(once, { refusals: 0, room: 2 });
    unwrap(await h.services.blueprints.create(h.system, { name: 'once', implementation: 'opens-once', config: {} }));
    const [a, b] = await Promise.all(
      ['owner-a', 'owner-b'].map((name) => ensurePrincipal(h.db, { name, kind: 'USER', isAdmin: true })),
    );
    // a1 is refused, which opens room for two: the gang behind it would take both.
    const a1 = unwrap(await h.services.leases.request(a!, { resourceType: 'opens-once', priority: 1 })).id;
    const gang = unwrap(
      await h.services.leases.requestGang(b!, { parts: [{ resourceType: 'opens-once', count: 2 }], priority: 0 }),
    );
    const stop = h.services.worker.start({ concurrency: 1 }).stop;
    try {
      await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === 1);
      await waitFor(
        async () =>
          (await h.db.prisma.log.count({ where: { type: 'waiting-for-resources', leaseId: gang[0]!.id } })) > 0,
      );
    } finally {
      await stop();
    }
    expect(once.refusals).toBe(1);
    const statuses = await h.db.prisma.lease.findMany({
      where: { id: { in: [a1, ...gang.map((p) => p.id)] } },
      orderBy: { id: 'asc' },
    });
    expect(statuses.map((l) => l.status)).toEqual(['ACTIVE', 'PENDING', 'PENDING']);
  });
});
