import type { Blueprint, Lease } from '../generated/prisma/client.js';
import type { BlueprintImplementation, BlueprintOf } from '../blueprints/implementation.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import type { Tx } from './context.js';

export interface LoadedBlueprint {
  blueprint: BlueprintOf<unknown>;
  implementation: BlueprintImplementation;
}

/**
 * A blueprint with its implementation and parsed config; null when its implementation is not
 * registered in this process or its stored config no longer passes the schema (it then serves
 * nothing rather than being half-understood).
 */
export function bindBlueprint(registry: BlueprintRegistry, blueprint: Blueprint): LoadedBlueprint | null {
  const implementation = registry.get(blueprint.implementation);
  if (!implementation) return null;
  const parsed = implementation.configSchema.safeParse(blueprint.config);
  if (!parsed.success) return null;
  return { blueprint: { ...blueprint, config: parsed.data }, implementation };
}

export async function loadBlueprint(tx: Tx, registry: BlueprintRegistry, id: number): Promise<LoadedBlueprint | null> {
  const blueprint = await tx.blueprint.findUnique({ where: { id } });
  return blueprint ? bindBlueprint(registry, blueprint) : null;
}

export type CandidateBlueprints =
  | { ok: true; candidates: LoadedBlueprint[] }
  | {
      ok: false;
      reason: 'no-blueprints' | 'no-authorizations' | 'cannot-ever-allocate';
      blueprintIds: number[];
      message: string;
    };

/**
 * Step 1 of allocation. Order is the policy "oldest blueprint first": stable, so that the same
 * lease tried twice asks the blueprints in the same order, and predictable for operators.
 */
export async function candidateBlueprints(
  tx: Tx,
  registry: BlueprintRegistry,
  lease: Lease,
): Promise<CandidateBlueprints> {
  const rows = await tx.blueprint.findMany({
    where: {
      resourceType: lease.resourceType,
      disabled: false,
      ...(lease.allowedBlueprintIds.length > 0 ? { id: { in: lease.allowedBlueprintIds } } : {}),
    },
    orderBy: { id: 'asc' },
  });
  const usable = rows
    .map((row) => bindBlueprint(registry, row))
    .filter((loaded): loaded is LoadedBlueprint => loaded !== null)
    .filter((loaded) => loaded.implementation.canAnyBlueprintEverAllocate?.(lease) ?? true);
  if (usable.length === 0) {
    return {
      ok: false,
      reason: 'no-blueprints',
      blueprintIds: [],
      message: `no enabled blueprint yields "${lease.resourceType}"`,
    };
  }
  const authorized = await authorizedBlueprints(tx, lease, usable);
  if (authorized.length === 0) {
    const blueprintIds = usable.map((c) => c.blueprint.id);
    return {
      ok: false,
      reason: 'no-authorizations',
      blueprintIds,
      message: `not authorized on any of blueprints ${blueprintIds.join(', ')}`,
    };
  }
  const possible = authorized.filter((c) => c.implementation.canEverAllocate(c.blueprint, lease));
  if (possible.length === 0) {
    const blueprintIds = authorized.map((c) => c.blueprint.id);
    return {
      ok: false,
      reason: 'cannot-ever-allocate',
      blueprintIds,
      message: `no blueprint can ever satisfy this lease (tried ${blueprintIds.join(', ')})`,
    };
  }
  return { ok: true, candidates: possible };
}

async function authorizedBlueprints(tx: Tx, lease: Lease, candidates: LoadedBlueprint[]): Promise<LoadedBlueprint[]> {
  if (lease.authorizingPrincipalId === null) return [];
  const principal = await tx.principal.findUnique({ where: { id: lease.authorizingPrincipalId } });
  if (!principal) return [];
  // The system and admins bypass authorizations, as Drydock's command line does.
  if (principal.isAdmin || principal.kind === 'SYSTEM') return candidates;
  const granted = await tx.authorization.findMany({
    where: {
      principalId: principal.id,
      blueprintId: { in: candidates.map((c) => c.blueprint.id) },
      blueprintState: 'AUTHORIZED',
      objectState: 'ACTIVE',
    },
    select: { blueprintId: true },
  });
  const ids = new Set(granted.map((g) => g.blueprintId));
  return candidates.filter((c) => ids.has(c.blueprint.id));
}
