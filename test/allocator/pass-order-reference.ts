import { ensurePrincipal, type Actor } from '../../src/services/index.js';
import { unwrap, type Harness } from '../support/allocator-harness.js';
import type { Prng } from '../support/prng.js';

// The policy of drydock-spec.md ("Scheduling") written out on its own, as a plain greedy, for the
// randomized checks of the pass's grant order (not the pass's policy-order.ts), and the owners
// those checks queue leases for.

export interface Asked {
  id: number;
  owner: number;
  priority: number;
  createdAt: number;
  label: 'a' | 'b';
}

export interface OwnerSetup {
  actor: Actor;
  weight: number;
  quota: number | null;
}

/**
 * The reference: repeatedly take the best remaining lease by (band desc, live/weight asc,
 * arrival), as drydock-spec.md states the policy; grant it if its label has a slot left and its
 * owner is under quota. A lease that cannot be served and has aged stops every lower band.
 */
export function referenceGrants(
  asked: Asked[],
  owners: Map<number, OwnerSetup>,
  capacity: Record<string, number>,
  now: number,
  agingMs: number,
  liveBefore: ReadonlyMap<number, number> = new Map(),
): number[] {
  const band = (l: Asked) => l.priority + Math.floor(Math.max(0, now - l.createdAt) / agingMs);
  const live = new Map(liveBefore);
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
      if (now - lease.createdAt >= agingMs) stop = Math.max(stop, band(lease));
    }
  }
  return granted;
}

/**
 * `count` owners of `test-slot` leases, with random weights (1-3) and, at `quotaChance`, a quota
 * of 1 to `maxQuota` live leases. Admins, so that they may raise priorities (and need no
 * authorization).
 */
export async function randomOwners(
  h: Harness,
  rng: Prng,
  { count, quotaChance, maxQuota }: { count: number; quotaChance: number; maxQuota: number },
): Promise<Map<number, OwnerSetup>> {
  const owners = new Map<number, OwnerSetup>();
  for (let i = 0; i < count; i++) {
    const actor = await ensurePrincipal(h.db, { name: `owner-${i}`, kind: 'USER', isAdmin: true });
    const weight = rng.int(1, 3);
    unwrap(await h.services.scheduling.setPrincipalWeight(h.system, actor.principalId, weight));
    const quota = rng.chance(quotaChance) ? rng.int(1, maxQuota) : null;
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
  return owners;
}

/** Asks for a `test-slot` lease of `label` for `owner`, as the reference sees it. */
export async function askFor(h: Harness, owner: OwnerSetup, label: Asked['label'], priority: number): Promise<Asked> {
  const lease = unwrap(
    await h.services.leases.request(owner.actor, { resourceType: 'test-slot', attributes: { label }, priority }),
  );
  return { id: lease.id, owner: owner.actor.principalId, priority, createdAt: lease.createdAt.getTime(), label };
}
