import { afterAll, beforeAll, expect, it } from 'vitest';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describeEachDatabase } from '../support/database.js';
import { bareAllocatorDeps, createHarness, queueIdOf, unwrap, type Harness } from '../support/allocator-harness.js';
import { Prng, seedFromEnv } from '../support/prng.js';
import { roomBlueprint } from '../support/room-blueprint.js';
import { askFor, randomOwners, referenceGrants, type Asked } from './pass-order-reference.js';

// The randomized order check of pass-order.test.ts, for capacity that frees while the pass runs:
// the pool has no room until the pass's k-th look at it (as if a release committed just then),
// then room for R leases. Every lease tried before that was refused, and nothing was granted, so
// from there on the pass must serve the queue as the reference greedy serves it with room for R
// from the start, lease for lease: the leases refused a moment before go first, in policy order,
// with the shares the pass's grants move. (Tried in the order they were first taken, an owner
// whose lease had just been served went before one that held less.)

const AGING_MS = 60_000;
const ROUNDS = Number(process.env['PASS_ORDER_ROUNDS'] ?? 20);
const seed = seedFromEnv('PASS_ORDER_SEED');

interface Room {
  /** Resources the pool may hold now. */
  room: number;
  /** The look at the pool (a call of canAllocateNow) that opens room for `opensTo`. */
  opensAt: number;
  opensTo: number;
  looks: number;
}

/** `test-slot` resources, one per lease, as many as `control.room`, which opens mid-pass. */
function openingBlueprint(control: Room) {
  return roomBlueprint('opening-slots', 'test-slot', async (blueprint, _lease, queries) => {
    if (++control.looks === control.opensAt) control.room = control.opensTo;
    return (await queries.resources(blueprint.id, ['PENDING', 'ACTIVE'])).length < control.room;
  });
}

describeEachDatabase('pass order when capacity frees while the pass runs', (kind) => {
  let h: Harness;
  let offsetMs = 0;
  let frozen: number | null = null;
  const control: Room = { room: 0, opensAt: 0, opensTo: 0, looks: 0 };
  beforeAll(async () => {
    h = await createHarness(kind, {
      implementations: [openingBlueprint(control)],
      allocator: { agingIntervalMs: AGING_MS, clock: () => new Date(frozen ?? Date.now() + offsetMs) },
    });
  });
  afterAll(() => h.dispose());

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: from the look that finds room, the pass grants in the reference greedy's order (seed ${seed + round})`, async () => {
      const rng = new Prng(seed + round);
      frozen = null;
      offsetMs = 0;
      await h.reset();
      Object.assign(control, { room: 0, opensAt: rng.int(1, 4), opensTo: rng.int(1, 6), looks: 0 });
      unwrap(
        await h.services.blueprints.create(h.system, { name: 'slots', implementation: 'opening-slots', config: {} }),
      );
      const owners = await randomOwners(h, rng, { count: rng.int(2, 4), quotaChance: 0.3, maxQuota: 2 });
      const asked: Asked[] = [];
      for (let i = 0; i < rng.int(6, 15); i++) {
        const owner = rng.pick([...owners.values()]);
        offsetMs = -rng.int(0, 3 * AGING_MS);
        asked.push(await askFor(h, owner, 'a', rng.int(-2, 3)));
      }
      offsetMs = 0;
      const queueId = await queueIdOf(h, 'test-slot');
      frozen = Date.now();
      await runSchedulingPass(bareAllocatorDeps(h), queueId);
      // Never opened (fewer looks than opensAt): nothing could be granted.
      const room = control.looks >= control.opensAt ? control.opensTo : 0;
      const expected = referenceGrants(asked, owners, { a: room }, frozen, AGING_MS);
      const granted = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
      expect(
        granted.map((l) => l.leaseId),
        JSON.stringify({ control, asked, owners: [...owners].map(([id, o]) => [id, o.weight, o.quota]) }),
      ).toEqual(expected);
      frozen = null;
    }, 60_000);
  }
});
