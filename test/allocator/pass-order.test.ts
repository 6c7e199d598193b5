import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensurePrincipal, type Actor } from '../../src/services/index.js';
import { describeEachDatabase } from '../support/database.js';
import { createHarness, unwrap, type Harness } from '../support/allocator-harness.js';
import { Prng, seedFromEnv } from '../support/prng.js';

// A randomized check of the pass's grant order against a reference greedy written here, on its
// own (not the pass's policy-order.ts): random owners, weights, quotas, priorities, ages and
// demands are queued while no worker runs; the first pass then serves them all, and the order of
// its lease-acquired logs must be the reference's, lease for lease.

const AGING_MS = 60_000;
const ROUNDS = Number(process.env['PASS_ORDER_ROUNDS'] ?? 10);
const seed = seedFromEnv('PASS_ORDER_SEED');

interface Asked {
  id: number;
  owner: number;
  priority: number;
  createdAt: number;
  label: 'a' | 'b';
}

interface OwnerSetup {
  actor: Actor;
  weight: number;
  quota: number | null;
}

/**
 * The reference: repeatedly take the best remaining lease by (band desc, live/weight asc,
 * arrival), as drydock-spec.md states the policy; grant it if its label has a slot left and its
 * owner is under quota. A lease that cannot be served and has aged stops every lower band.
 */
function referenceGrants(
  asked: Asked[],
  owners: Map<number, OwnerSetup>,
  capacity: Record<string, number>,
  now: number,
) {
  const band = (l: Asked) => l.priority + Math.floor(Math.max(0, now - l.createdAt) / AGING_MS);
  const live = new Map<number, number>();
  const left = { ...capacity };
  const remaining = [...asked];
  const granted: number[] = [];
  let stop = -Infinity;
  const failedLabels = new Set<string>();
  while (remaining.length > 0) {
    remaining.sort((x, y) => {
      const share = (l: Asked) => (live.get(l.owner) ?? 0) / owners.get(l.owner)!.weight;
      return band(y) - band(x) || share(x) - share(y) || x.createdAt - y.createdAt || x.id - y.id;
    });
    const lease = remaining.shift()!;
    if (band(lease) < stop) continue;
    const quota = owners.get(lease.owner)!.quota;
    if (quota !== null && (live.get(lease.owner) ?? 0) >= quota) continue;
    // A lease of a demand (here: owner and label) that already failed in this pass is not tried.
    const demand = `${lease.owner}:${lease.label}`;
    if (failedLabels.has(demand)) continue;
    if ((left[lease.label] ?? 0) > 0) {
      left[lease.label]!--;
      live.set(lease.owner, (live.get(lease.owner) ?? 0) + 1);
      granted.push(lease.id);
    } else {
      failedLabels.add(demand);
      if (now - lease.createdAt >= AGING_MS) stop = Math.max(stop, band(lease));
    }
  }
  return granted;
}

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
      const owners = new Map<number, OwnerSetup>();
      for (let i = 0; i < rng.int(2, 4); i++) {
        // Admins, so that they may raise priorities (and need no authorization).
        const actor = await ensurePrincipal(h.db, { name: `owner-${i}`, kind: 'USER', isAdmin: true });
        const weight = rng.int(1, 3);
        unwrap(await h.services.scheduling.setPrincipalWeight(h.system, actor.principalId, weight));
        const quota = rng.chance(0.3) ? rng.int(1, 2) : null;
        if (quota !== null)
          unwrap(
            await h.services.scheduling.setQuota(h.system, {
              principalId: actor.principalId,
              resourceType: 'test-slot',
              maxLeases: quota,
            }),
          );
        owners.set(actor.principalId, { actor, weight, quota });
      }
      const asked: Asked[] = [];
      for (let i = 0; i < rng.int(6, 15); i++) {
        const owner = rng.pick([...owners.values()]);
        const priority = rng.int(-2, 3);
        const label = capacity.b > 0 && rng.chance(0.4) ? 'b' : 'a';
        offsetMs = -rng.int(0, 3 * AGING_MS);
        const lease = unwrap(
          await h.services.leases.request(owner.actor, {
            resourceType: 'test-slot',
            attributes: { label },
            priority,
          }),
        );
        asked.push({
          id: lease.id,
          owner: owner.actor.principalId,
          priority,
          createdAt: lease.createdAt.getTime(),
          label,
        });
      }
      frozen = Date.now();
      const expected = referenceGrants(asked, owners, capacity, frozen);
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
