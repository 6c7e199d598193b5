import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/database.js';
import { createHarness, unwrap, type Harness } from '../support/allocator-harness.js';
import { Prng, seedFromEnv } from '../support/prng.js';
import { askFor, randomOwners, referenceGrants, type Asked } from './pass-order-reference.js';

// A randomized check of the pass's grant order against a reference greedy written on its own
// (pass-order-reference.ts, not the pass's policy-order.ts): random owners, weights, quotas,
// priorities, ages and demands are queued while no worker runs; the first pass then serves them
// all, and the order of its lease-acquired logs must be the reference's, lease for lease.

const AGING_MS = 60_000;
const ROUNDS = Number(process.env['PASS_ORDER_ROUNDS'] ?? 10);
const seed = seedFromEnv('PASS_ORDER_SEED');

describeEachDatabase('pass order', (kind) => {
  let h: Harness;
  let offsetMs = 0;
  let frozen: number | null = null;
  beforeAll(async () => {
    h = await createHarness(kind, {
      allocator: {
        agingIntervalMs: AGING_MS,
        // Frozen during the pass, so that the reference computes the same bands.
        clock: () => new Date(frozen ?? Date.now() + offsetMs),
      },
    });
  });
  afterAll(() => h.dispose());

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: the first pass grants in the reference greedy's order (seed ${seed + round})`, async () => {
      const rng = new Prng(seed + round);
      frozen = null;
      offsetMs = 0;
      await h.reset();
      const capacity = { a: rng.int(1, 6), b: rng.int(0, 3) };
      for (const label of ['a', 'b'] as const)
        unwrap(
          await h.services.blueprints.create(h.system, {
            name: `slots-${label}`,
            implementation: 'test',
            config: {
              exclusive: true,
              label,
              maxResources: Math.max(capacity[label], 1),
              never: capacity[label] === 0,
            },
          }),
        );
      const owners = await randomOwners(h, rng, { count: rng.int(2, 4), quotaChance: 0.3, maxQuota: 2 });
      const asked: Asked[] = [];
      for (let i = 0; i < rng.int(6, 15); i++) {
        const owner = rng.pick([...owners.values()]);
        const priority = rng.int(-2, 3);
        const label = capacity.b > 0 && rng.chance(0.4) ? 'b' : 'a';
        offsetMs = -rng.int(0, 3 * AGING_MS);
        asked.push(await askFor(h, owner, label, priority));
      }
      frozen = Date.now();
      const expected = referenceGrants(asked, owners, capacity, frozen, AGING_MS);
      const stop = h.services.worker.start({ concurrency: 1 }).stop;
      try {
        // The first pass has looked at every lease once each is granted or records why it waits.
        const deadline = Date.now() + 20_000;
        for (;;) {
          const leases = await h.db.prisma.lease.findMany();
          if (leases.every((l) => l.status !== 'PENDING' || l.blocker !== null)) break;
          if (Date.now() > deadline) throw new Error('the pass did not look at every lease within 20 s');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
        expect(
          acquired.map((l) => l.leaseId),
          JSON.stringify({ capacity, asked, owners: [...owners].map(([id, o]) => [id, o.weight, o.quota]) }),
        ).toEqual(expected);
      } finally {
        await stop();
        frozen = null;
      }
    }, 60_000);
  }
});
