import type { Database } from '../../src/db/database.js';
import { ensurePrincipal, type LeaseRequest, type Services, type Actor } from '../../src/services/index.js';
import { hostPoolConfig, unwrap } from '../support/allocator-harness.js';
import type { BlueprintRules } from './log-checker.js';

// The blueprints the model leases from, and which of them each kind of lease may end up on.
//   fast    exclusive test slots, open at once, at most 3 resources (limit slot locks)
//   later   exclusive test slots opened by a setup step ("allocate now, activate later"), at most 2
//   pool    a 3-host pool shared by any number of leases, one resource per binding
//   never   a blueprint that can never serve: its leases must break, never be acquired

export type LeaseKind = 'exclusive' | 'later' | 'host' | 'never';
export const leaseKinds: readonly LeaseKind[] = ['exclusive', 'later', 'host', 'never'];

/** The scheduler's aging interval in model runs: short, so that leases do age within a run. */
export const MODEL_AGING_MS = 1_500;

/** Owners of the model's leases: weights for fair share, one with a quota of test slots. */
export interface ModelOwner {
  actor: Actor;
  weight: number;
  /** Its quota of live `test-slot` leases; null: none. */
  quota: number | null;
}

export interface Fleet {
  ids: { fast: number; later: number; pool: number; never: number };
  owners: ModelOwner[];
  rules(blueprintId: number): BlueprintRules | undefined;
  /** Blueprints a lease of this kind may be served by. */
  allowed: Record<LeaseKind, readonly number[]>;
}

export const FAST_LIMIT = 3;
export const LATER_LIMIT = 2;
export const POOL_HOSTS = 3;

export async function createFleet(services: Services, system: Actor, db: Database): Promise<Fleet> {
  const create = async (name: string, implementation: string, config: object, resourceLimit?: number) =>
    unwrap(
      await services.blueprints.create(system, {
        name,
        implementation,
        config,
        ...(resourceLimit === undefined ? {} : { resourceLimit }),
      }),
    ).id;
  const ids = {
    fast: await create('model-fast', 'test', { exclusive: true }, FAST_LIMIT),
    later: await create(
      'model-later',
      'test',
      { exclusive: true, activation: 'later', activateAfterMs: 30, label: 'later' },
      LATER_LIMIT,
    ),
    pool: await create('model-pool', 'host-pool', hostPoolConfig(POOL_HOSTS)),
    never: await create('model-never', 'test', { never: true, label: 'never' }),
  };
  const rules = new Map<number, BlueprintRules>([
    [ids.fast, { exclusive: true, limit: FAST_LIMIT }],
    [ids.later, { exclusive: true, limit: LATER_LIMIT }],
    [ids.pool, { exclusive: false, limit: POOL_HOSTS }],
    [ids.never, { exclusive: false, limit: 0 }],
  ]);
  const owners: ModelOwner[] = [];
  for (const [name, weight, quota] of [
    ['model-a', 1, null],
    ['model-b', 2, null],
    ['model-c', 1, 2],
  ] as const) {
    // Admins: they may raise priorities and need no authorizations.
    const actor = await ensurePrincipal(db, { name, kind: 'USER', isAdmin: true });
    unwrap(await services.scheduling.setPrincipalWeight(system, actor.principalId, weight));
    if (quota !== null)
      unwrap(
        await services.scheduling.setQuota(system, {
          principalId: actor.principalId,
          resourceType: 'test-slot',
          maxLeases: quota,
        }),
      );
    owners.push({ actor, weight, quota });
  }
  return {
    ids,
    owners,
    rules: (id) => rules.get(id),
    // An unlabelled test lease fits every labelled test blueprint that can allocate, too.
    allowed: { exclusive: [ids.fast, ids.later], later: [ids.later], host: [ids.pool], never: [] },
  };
}

/** The kind of a lease leaseRequest asked for, from its row. */
export function kindOf(lease: { resourceType: string; attributes: unknown }): LeaseKind {
  if (lease.resourceType === 'host') return 'host';
  const label = (lease.attributes as { label?: unknown } | null)?.label;
  return label === 'later' ? 'later' : label === 'never' ? 'never' : 'exclusive';
}

export function leaseRequest(kind: LeaseKind, until?: Date): LeaseRequest {
  const base = until ? { until } : {};
  switch (kind) {
    case 'exclusive':
      return { ...base, resourceType: 'test-slot' };
    case 'later':
      return { ...base, resourceType: 'test-slot', attributes: { label: 'later' } };
    case 'never':
      return { ...base, resourceType: 'test-slot', attributes: { label: 'never' } };
    case 'host':
      return { ...base, resourceType: 'host' };
  }
}
