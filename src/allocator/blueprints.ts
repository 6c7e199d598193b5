import type { Blueprint, Lease, Resource } from '../generated/prisma/client.js';
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
  // Raw: the client's findUnique costs noticeably more CPU, and this runs on most updates.
  const [blueprint] = await tx.$queryRaw<Blueprint[]>`SELECT * FROM "Blueprint" WHERE id = ${id}`;
  return blueprint ? bindBlueprint(registry, blueprint) : null;
}

export async function findResource(tx: Tx, id: number): Promise<Resource | null> {
  const [resource] = await tx.$queryRaw<Resource[]>`SELECT * FROM "Resource" WHERE id = ${id}`;
  return resource ?? null;
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
  // One statement, authorizations included, since this runs on every attempt of every lease. The
  // system and admins bypass authorizations, as Drydock's command line does; no principal, none.
  const rows = await tx.$queryRaw<(Blueprint & { authorized: boolean })[]>`
    SELECT b.*, COALESCE(p."isAdmin" OR p.kind = 'SYSTEM' OR EXISTS (
        SELECT 1 FROM "Authorization" a
        WHERE a."principalId" = p.id AND a."blueprintId" = b.id
          AND a."blueprintState" = 'AUTHORIZED' AND a."objectState" = 'ACTIVE'), false) AS authorized
    FROM "Blueprint" b LEFT JOIN "Principal" p ON p.id = ${lease.authorizingPrincipalId}::int
    WHERE b."resourceType" = ${lease.resourceType} AND NOT b.disabled
      AND (cardinality(${lease.allowedBlueprintIds}::int[]) = 0 OR b.id = ANY(${lease.allowedBlueprintIds}::int[]))
    ORDER BY b.id`;
  const authorizedIds = new Set(rows.filter((row) => row.authorized).map((row) => row.id));
  const usable = rows
    .map(({ authorized: _, ...row }) => bindBlueprint(registry, row))
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
  const authorized = usable.filter((c) => authorizedIds.has(c.blueprint.id));
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
