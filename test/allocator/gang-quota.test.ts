import { expect, it } from 'vitest';
import type { Lease } from '../../src/generated/prisma/client.js';
import { ensurePrincipal, type Actor } from '../../src/services/index.js';
import { blockerMessage } from '../../src/schema/lease-blocker.js';
import { describeEachDatabase } from '../support/database.js';
import { harnessForEachTest, noJobDue, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A waiting gang and its owner's quota, which an administrator changes while it waits. A gang is
// granted whole or not at all, so one with more parts of a type than its owner's quota of that
// type can never be granted: requested so, it is refused; left so by a quota lowered under it, it
// waits with the blocker gang-over-quota (not "at its quota", which it may be nowhere near) until
// the quota is raised again, and then waits as any gang would. Each type's quota counts the
// gang's parts of that type only, whichever type's pass serves it.

describeEachDatabase('gangs and quotas changed while they wait', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  const slots = (maxResources: number, name = 'slots', resourceType?: string) =>
    h.services.blueprints
      .create(h.system, {
        name,
        implementation: 'test',
        config: { exclusive: true, maxResources },
        ...(resourceType ? { resourceType } : {}),
      })
      .then(unwrap);
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
  const setQuota = async (actor: Actor, resourceType: string, maxLeases: number | null) =>
    unwrap(await h.services.scheduling.setQuota(h.system, { principalId: actor.principalId, resourceType, maxLeases }));
  const blockers = async (leases: Lease[]) =>
    (await h.db.prisma.lease.findMany({ where: { id: { in: leases.map((l) => l.id) } }, orderBy: { id: 'asc' } })).map(
      (lease) => ({ status: lease.status, blocker: lease.blocker as { reason: string } | null }),
    );
  /** Resolves once every part waits with the blocker `reason`. */
  const waitingWith = (leases: Lease[], reason: string) =>
    waitFor(async () => (await blockers(leases)).every((l) => l.status === 'PENDING' && l.blocker?.reason === reason));
  /** What the owner reads in the type's queue: each entry's blocker and its words. */
  const queueSeen = async (actor: Actor, resourceType: string) =>
    unwrap(await h.services.scheduling.queue(actor, resourceType, 10)).map((entry) => ({
      lease: entry.lease?.id ?? null,
      reason: entry.blocker?.reason ?? null,
      message: entry.blocker ? blockerMessage(entry.blocker) : null,
    }));

  it('a quota lowered under a waiting gang’s size: gang-over-quota until raised, never granted meanwhile', async () => {
    await slots(3);
    const capped = await user('capped');
    await setQuota(capped, 'test-slot', 3);
    const holder = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    await waitForLease(h, holder.id, ['ACTIVE']);
    const gang = unwrap(
      await h.services.leases.requestGang(capped, { parts: [{ resourceType: 'test-slot', count: 3 }] }),
    );
    // Two slots free, three parts: it waits for capacity.
    await waitingWith(gang, 'gang-waiting');

    await setQuota(capped, 'test-slot', 2);
    await waitingWith(gang, 'gang-over-quota');
    const over = { reason: 'gang-over-quota', resourceType: 'test-slot', quota: 2, parts: 3 };
    for (const part of await blockers(gang)) expect(part.blocker).toEqual(over);
    const overMessage =
      "its gang asks for 3 leases of test-slot, more than its owner's quota of 2: it waits until the quota is raised";
    expect(await queueSeen(capped, 'test-slot')).toEqual(
      gang.map((part) => ({ lease: part.id, reason: 'gang-over-quota', message: overMessage })),
    );
    // Another owner sees the reason without the figures.
    const other = await user('other');
    expect((await queueSeen(other, 'test-slot'))[0]).toEqual({
      lease: null,
      reason: 'gang-over-quota',
      message: "its gang asks for more leases of a type than its owner's quota: it waits until the quota is raised",
    });

    // Raised back while capacity is still short: it waits for capacity again.
    await setQuota(capped, 'test-slot', 3);
    await waitingWith(gang, 'gang-waiting');
    await setQuota(capped, 'test-slot', 2);
    await waitingWith(gang, 'gang-over-quota');

    // Capacity for the whole gang frees: it is not granted, and its blocker stays.
    unwrap(await h.services.leases.release(h.system, holder.id));
    await waitForLease(h, holder.id, ['DESTROYED']);
    await waitFor(() => noJobDue(h));
    for (const part of await blockers(gang)) expect(part).toEqual({ status: 'PENDING', blocker: over });
    expect(await h.db.prisma.lease.count({ where: { ownerId: capped.principalId, status: 'ACTIVE' } })).toBe(0);

    // The quota removed: it is granted.
    await setQuota(capped, 'test-slot', null);
    for (const part of gang) await waitForLease(h, part.id, ['ACTIVE']);
  }, 60_000);

  it('a gang spanning types: each type’s quota counts the gang’s parts of that type, whichever pass serves it', async () => {
    await slots(5);
    await slots(5, 'other slots', 'other-slot');
    const capped = await user('capped');
    // One part of test-slot, two of other-slot: within both quotas.
    await setQuota(capped, 'test-slot', 1);
    await setQuota(capped, 'other-slot', 2);
    const fits = unwrap(
      await h.services.leases.requestGang(capped, {
        parts: [
          { resourceType: 'test-slot', count: 1 },
          { resourceType: 'other-slot', count: 2 },
        ],
      }),
    );
    for (const part of fits) await waitForLease(h, part.id, ['ACTIVE']);
    unwrap(await h.services.leases.release(capped, fits[0]!.id));
    for (const part of fits) await waitForLease(h, part.id, ['DESTROYED']);

    // The owner holds one other-slot lease: a gang with two more parts of it would take it past its
    // quota of two, whichever of the two types' passes looks at the gang first (test-slot's, with
    // no quota of its own now, too).
    await setQuota(capped, 'test-slot', null);
    const held = unwrap(await h.services.leases.request(capped, { resourceType: 'other-slot' }));
    await waitForLease(h, held.id, ['ACTIVE']);
    const gang = unwrap(
      await h.services.leases.requestGang(capped, {
        parts: [
          { resourceType: 'test-slot', count: 1 },
          { resourceType: 'other-slot', count: 2 },
        ],
      }),
    );
    await waitingWith(gang, 'quota');
    await waitFor(() => noJobDue(h));
    for (const part of await blockers(gang))
      expect(part).toEqual({
        status: 'PENDING',
        blocker: { reason: 'quota', resourceType: 'other-slot', quota: 2, live: 1, parts: 2 },
      });
    expect(
      await h.db.prisma.lease.count({
        where: { ownerId: capped.principalId, resourceType: 'other-slot', status: { in: ['ACQUIRED', 'ACTIVE'] } },
      }),
    ).toBe(1);
    const atQuota = await queueSeen(capped, 'test-slot');
    expect(atQuota[0]!.message).toBe(
      'its owner holds 1 of its quota of 2 live leases of other-slot, too few for the 2 its gang asks for',
    );

    // Lowered under the gang's two other-slot parts: over quota, seen from either type's queue.
    await setQuota(capped, 'other-slot', 1);
    await waitingWith(gang, 'gang-over-quota');
    for (const part of await blockers(gang))
      expect(part.blocker).toEqual({ reason: 'gang-over-quota', resourceType: 'other-slot', quota: 1, parts: 2 });

    // The held lease gone and the quota back at two: the gang is granted.
    unwrap(await h.services.leases.release(capped, held.id));
    await waitForLease(h, held.id, ['DESTROYED']);
    await setQuota(capped, 'other-slot', 2);
    for (const part of gang) await waitForLease(h, part.id, ['ACTIVE']);
  }, 60_000);
});
