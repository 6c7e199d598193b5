import { Prisma, type Blueprint, type Lease, type Resource } from '../generated/prisma/client.js';
import type { BlueprintImplementation, BlueprintOf } from '../blueprints/implementation.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import { principalVisibleWhere } from '../access/policy.js';
import { whereSql } from '../access/where-sql.js';
import { utcTimestamp } from '../db/timestamps.js';
import type { Tx } from './context.js';
import type { LeaseSql } from './lease-sql.js';

export interface LoadedBlueprint {
  blueprint: BlueprintOf<unknown>;
  implementation: BlueprintImplementation;
  /**
   * The row version (xmin) it was bound from, null when bound from a row in hand: a build checks
   * it, so that nothing is built on a config that changed since it was read (see buildResource).
   */
  version: string | null;
}

/**
 * A blueprint with its implementation and parsed config; null when its implementation is not
 * registered in this process or its stored config no longer passes the schema (it then serves
 * nothing rather than being half-understood).
 */
export function bindBlueprint(
  registry: BlueprintRegistry,
  blueprint: Blueprint,
  version: string | null = null,
): LoadedBlueprint | null {
  const implementation = registry.get(blueprint.implementation);
  if (!implementation) return null;
  const parsed = implementation.configSchema.safeParse(blueprint.config);
  if (!parsed.success) return null;
  return { blueprint: { ...blueprint, config: parsed.data }, implementation, version };
}

// Bound blueprints by row version, per registry. Most updates need their blueprint, and binding
// one parses its whole config (a pool's config lists every host): a statement names the versions
// this process has bound already and gets the row only when it has changed (see blueprintSql).
// xmin changes with every write of the row, whoever makes it.
const bound = new WeakMap<BlueprintRegistry, Map<number, { version: string; loaded: LoadedBlueprint | null }>>();

function boundOf(registry: BlueprintRegistry) {
  let map = bound.get(registry);
  if (!map) {
    map = new Map();
    bound.set(registry, map);
  }
  return map;
}

/**
 * A blueprint as one JSON value, for a column of a bigger statement: `{ id, version }` plus the
 * row only when this process has not bound that version yet. Decode it with blueprintFrom.
 */
export function blueprintSql(registry: BlueprintRegistry, alias: string): Prisma.Sql {
  const known = [...boundOf(registry)];
  const b = Prisma.raw(alias);
  return Prisma.sql`json_build_object('id', ${b}.id, 'version', ${b}.xmin::text, 'row',
    CASE WHEN ${b}.xmin::text = (SELECT k.v FROM unnest(${known.map(([id]) => id)}::int[], ${known.map(([, entry]) => entry.version)}::text[]) AS k(i, v) WHERE k.i = ${b}.id)
         THEN NULL ELSE to_jsonb(${b}) END)`;
}

export interface BlueprintColumn {
  id: number;
  version: string;
  row: Record<string, unknown> | null;
}

/**
 * The bound blueprint of a blueprintSql column. `undefined` when the row was left out as known but
 * another statement has since bound a newer version: the caller reads it again (loadBlueprint).
 */
export function blueprintFrom(
  registry: BlueprintRegistry,
  column: BlueprintColumn,
): LoadedBlueprint | null | undefined {
  const map = boundOf(registry);
  const cached = map.get(column.id);
  if (column.row === null) return cached?.version === column.version ? cached.loaded : undefined;
  if (cached?.version === column.version) return cached.loaded;
  const loaded = bindBlueprint(registry, decodeBlueprint(column.row), column.version);
  map.set(column.id, { version: column.version, loaded });
  return loaded;
}

export async function loadBlueprint(tx: Tx, registry: BlueprintRegistry, id: number): Promise<LoadedBlueprint | null> {
  for (;;) {
    const [row] = await tx.$queryRaw<{ blueprint: BlueprintColumn }[]>`
      SELECT ${blueprintSql(registry, 'b')} AS blueprint FROM "Blueprint" b WHERE b.id = ${id}`;
    if (!row) return null;
    const loaded = blueprintFrom(registry, row.blueprint);
    if (loaded !== undefined) return loaded;
  }
}

// Rows that come back inside JSON (to_jsonb) carry timestamps as text without a zone; the
// columns are UTC, as Prisma writes and reads them.
const utc = (value: unknown): Date | null => (typeof value === 'string' ? utcTimestamp(value) : null);

export function decodeBlueprint(row: Record<string, unknown>): Blueprint {
  return { ...row, createdAt: utc(row['createdAt'])!, updatedAt: utc(row['updatedAt'])! } as Blueprint;
}

export function decodeResource(row: Record<string, unknown>): Resource {
  return {
    ...row,
    until: utc(row['until']),
    lastUsedAt: utc(row['lastUsedAt'])!,
    createdAt: utc(row['createdAt'])!,
    updatedAt: utc(row['updatedAt'])!,
    activatedAt: utc(row['activatedAt']),
    releasedAt: utc(row['releasedAt']),
    destroyedAt: utc(row['destroyedAt']),
  } as Resource;
}

/**
 * Locked, as acquire.ts does: the resource's own update holds its row while it releases it, so a
 * lease about to activate waits for that commit and sees RELEASED, instead of activating on a
 * resource whose release is committing at the same moment. Exclusively (FOR NO KEY UPDATE), not
 * shared: the lease's activation then writes the resource's log, which takes the row exclusively
 * (logs.ts), and two leases activating on one resource that both held it shared would each wait
 * for the other to let go.
 */
export async function findResourceForLeaseUpdate(tx: Tx, id: number): Promise<Resource | null> {
  const [resource] = await tx.$queryRaw<Resource[]>`SELECT * FROM "Resource" WHERE id = ${id} FOR NO KEY UPDATE`;
  return resource ?? null;
}

export async function findResource(tx: Tx, id: number): Promise<Resource | null> {
  const [resource] = await tx.$queryRaw<Resource[]>`SELECT * FROM "Resource" WHERE id = ${id}`;
  return resource ?? null;
}

/** A resource and its bound blueprint in one statement (null: no such resource). */
export async function findResourceWithBlueprint(
  tx: Tx,
  registry: BlueprintRegistry,
  id: number,
): Promise<{ resource: Resource; loaded: LoadedBlueprint | null } | null> {
  const [row] = await tx.$queryRaw<(Resource & { __blueprint: BlueprintColumn | null })[]>`
    SELECT r.*, ${blueprintSql(registry, 'b')} AS __blueprint
    FROM "Resource" r LEFT JOIN "Blueprint" b ON b.id = r."blueprintId" WHERE r.id = ${id}`;
  if (!row) return null;
  const { __blueprint: column, ...resource } = row;
  return { resource, loaded: await blueprintOf(tx, registry, resource.blueprintId, column) };
}

/** Binds a blueprintSql column, reading the row again in the rare case blueprintFrom cannot. */
export async function blueprintOf(
  tx: Tx,
  registry: BlueprintRegistry,
  id: number,
  column: BlueprintColumn | null,
): Promise<LoadedBlueprint | null> {
  if (!column || column.id === null) return null;
  const loaded = blueprintFrom(registry, column);
  return loaded === undefined ? loadBlueprint(tx, registry, id) : loaded;
}

export type CandidateBlueprints =
  | { ok: true; candidates: LoadedBlueprint[] }
  | {
      ok: false;
      reason: 'no-blueprints' | 'no-authorizations' | 'cannot-ever-allocate';
      /** The blueprints the verdict is about, of those the lease's owner may see. */
      blueprintIds: number[];
      message: string;
    };

/**
 * The enabled blueprints that yield the lease's type (and that it allows), each as a
 * blueprintSql column with whether the lease's principal is authorized on it, as one JSON array
 * for a column of a bigger statement (allocation-view.ts); decode it with candidatesFrom. The system and
 * admins bypass authorizations, as Drydock's command line does; no principal, none.
 */
export function candidateBlueprintsSql(registry: BlueprintRegistry, lease: LeaseSql): Prisma.Sql {
  return Prisma.sql`(
    SELECT json_agg(json_build_object('blueprint', ${blueprintSql(registry, 'b')}, 'authorized',
      COALESCE(p."isAdmin" OR p.kind = 'SYSTEM' OR EXISTS (
        SELECT 1 FROM "Authorization" a
        WHERE a."principalId" = p.id AND a."blueprintId" = b.id
          AND a."blueprintState" = 'AUTHORIZED' AND a."objectState" = 'ACTIVE'), false)) ORDER BY b.id)
    FROM "Blueprint" b LEFT JOIN "Principal" p ON p.id = ${lease.authorizingPrincipalId}
    WHERE b."resourceType" = ${lease.resourceType} AND NOT b.disabled
      AND (cardinality(${lease.allowedBlueprintIds}) = 0 OR b.id = ANY(${lease.allowedBlueprintIds})))`;
}

export type CandidateBlueprintRows = { blueprint: BlueprintColumn; authorized: boolean }[] | null;

/**
 * Step 1 of allocation, on the rows of candidateBlueprintsSql. Order is the policy "oldest
 * blueprint first": stable, so that the same lease tried twice asks the blueprints in the same
 * order, and predictable for operators.
 */
export async function candidatesFrom(
  tx: Tx,
  registry: BlueprintRegistry,
  lease: Lease,
  rows: CandidateBlueprintRows,
): Promise<CandidateBlueprints> {
  const usable: LoadedBlueprint[] = [];
  const authorizedIds = new Set<number>();
  for (const row of rows ?? []) {
    const loaded = await blueprintOf(tx, registry, row.blueprint.id, row.blueprint);
    if (!loaded || !(loaded.implementation.canAnyBlueprintEverAllocate?.(lease) ?? true)) continue;
    usable.push(loaded);
    if (row.authorized) authorizedIds.add(loaded.blueprint.id);
  }
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
    const all = usable.map((c) => c.blueprint.id);
    const blueprintIds = await blueprintsSeenBy(tx, lease.ownerId, all);
    const named = blueprintIds.join(', ');
    return {
      ok: false,
      reason: 'no-authorizations',
      blueprintIds,
      message:
        blueprintIds.length === all.length
          ? `not authorized on any of blueprints ${named}`
          : `not authorized on any blueprint that yields "${lease.resourceType}"${named ? `, among them blueprints ${named}` : ''}`,
    };
  }
  const possible = authorized.filter((c) => c.implementation.canEverAllocate(c.blueprint, lease));
  if (possible.length === 0) {
    const blueprintIds = authorized.map((c) => c.blueprint.id);
    const why = authorized.map(
      (c) => `blueprint ${c.blueprint.id} "${c.blueprint.name}": ${cannotEverAllocate(c, lease)}`,
    );
    return {
      ok: false,
      reason: 'cannot-ever-allocate',
      blueprintIds,
      message: `no blueprint can ever satisfy this lease: ${why.join('; ')}`,
    };
  }
  return { ok: true, candidates: possible };
}

/**
 * Of `ids`, the blueprints the lease's owner may see (the access policy's Blueprint rule): the
 * verdict is the owner's to read, and naming a blueprint it may not see would tell it that the
 * blueprint exists and yields its type.
 */
async function blueprintsSeenBy(tx: Tx, ownerId: number | null, ids: number[]): Promise<number[]> {
  if (ownerId === null || ids.length === 0) return [];
  const rows = await tx.$queryRaw<{ id: number }[]>`
    SELECT b.id FROM "Blueprint" b
    WHERE b.id = ANY(${ids}::int[]) AND ${whereSql('Blueprint', 'b', principalVisibleWhere(ownerId, 'Blueprint'))}
    ORDER BY b.id`;
  return rows.map((row) => row.id);
}

/** Why a blueprint can never serve the lease, in the implementation's words when it has them. */
export function cannotEverAllocate(loaded: LoadedBlueprint, lease: Lease): string {
  return (
    loaded.implementation.explainCannotEverAllocate?.(loaded.blueprint, lease).message ??
    'can never satisfy these attributes'
  );
}
