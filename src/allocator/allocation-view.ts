import { Prisma, type Lease, type Resource, type ResourceStatus } from '../generated/prisma/client.js';
import type { AllocationQueries } from '../blueprints/implementation.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import { candidateBlueprintsSql, decodeResource, type CandidateBlueprintRows } from './blueprints.js';
import type { GrantBatch, TxContext } from './context.js';
import { brokenBuildsColumns } from './lease-end.js';
import { leaseValues, type LeaseSql } from './lease-sql.js';
import { allocationQueries } from './queries.js';
import type { Demand } from './demand.js';
import { NOTHING_KNOWN, type KnownOffer, type ListedResource, type ViewRow } from './known-resource-rows.js';

// What allocation sees of a resource type's pool, read in one statement, and what a pass learns of
// the pool while it plans, so that the leases of one demand do not each read it again.

/**
 * Pools up to this size come whole in the allocation view; a larger one comes as its least-loaded
 * ACTIVE resources only, so that a grant on a pool of 10,000 hosts reads a few rows, not 10,000.
 */
export const VIEW_RESOURCES = 32;

export interface AllocationView {
  blueprints: CandidateBlueprintRows;
  /**
   * The resources (not DESTROYED) of the enabled blueprints that yield the type with their live
   * lease counts, least loaded first. `complete`: all of them; otherwise (a pool
   * larger than VIEW_RESOURCES) only the VIEW_RESOURCES least-loaded ACTIVE ones.
   */
  resources: ViewResources | null;
  /** The lease's broken builds (see giveUpAfterBrokenBuilds). */
  broken: { count: number; last: number | null; hopeless: boolean } | null;
  /** A resource the lease is building (step 4); null when none. */
  building: number | null;
  /**
   * The type's pass job's capacity mark when the view was read (see scheduler/capacity-epoch.ts),
   * as text: a pass that skipped leases in an epoch learns from it that capacity may have freed.
   */
  capacityMark?: string | null;
  /** Set by a pass that keeps the view for the leases of one demand (see PoolViews). */
  memo?: PassMemo;
}

/**
 * What a pass learned of the pool since it read a view, so that the leases of one demand after
 * the first do not each ask the database (and the blueprint, over the whole pool) again: which
 * blueprints could not build for the demand, the blueprints' attribute lookups with the resources
 * the pass built added, and those resources themselves. Dropped with the view (a savepoint rolled
 * back, a change the view does not follow).
 */
export class PassMemo {
  readonly noBuild = new Set<number>();
  /** Blueprints whose allocation turn the pass holds (see the allocation loop). */
  readonly turns = new Set<number>();
  readonly built: { resource: Resource; live: number }[] = [];
  private readonly values: { blueprintId: number; statuses: readonly string[]; attribute: string; values: string[] }[] =
    [];

  async attributeValues(
    blueprintId: number,
    statuses: readonly ResourceStatus[],
    attribute: string,
    read: () => Promise<string[]>,
  ): Promise<string[]> {
    const key = [...statuses].sort().join();
    const kept = this.values.find(
      (v) => v.blueprintId === blueprintId && v.attribute === attribute && v.statuses.join() === key,
    );
    if (kept) return kept.values;
    const values = await read();
    this.values.push({ blueprintId, statuses: [...statuses].sort(), attribute, values });
    return values;
  }

  /** A resource this pass built: the lookups it answers would now include it. */
  add(resource: Resource): void {
    this.built.push({ resource, live: 0 });
    const attributes = resource.attributes as Record<string, unknown>;
    for (const v of this.values) {
      const value = attributes[v.attribute];
      if (v.blueprintId !== resource.blueprintId || !v.statuses.includes(resource.status) || value == null) continue;
      // As attributes->>'name' gives it.
      v.values.push(typeof value === 'string' ? value : JSON.stringify(value));
    }
  }

  /** A racing allocation took what a lookup called free: look in the database again. */
  forgetLookups(): void {
    this.values.length = 0;
  }
}

/** The type's pass job's capacity mark as text (scheduler/capacity-epoch.ts), as a scalar subquery. */
export function capacityMarkSql(resourceType: string | Prisma.Sql): Prisma.Sql {
  return Prisma.sql`(
    SELECT j."capacityMark"::text FROM "ResourceTypeQueue" q JOIN "Job" j ON j.key = 'pass:' || q.id
    WHERE q."resourceType" = ${resourceType})`;
}

/**
 * What allocating a lease reads, in one statement: the candidate blueprints, the type's resources
 * (see resourcesSql), the lease's broken builds and the resource it is building. The resources are
 * those of every enabled blueprint of the type; candidateResources (allocate.ts) leaves out the
 * ones this lease may not use. A pass reads it once per demand (scheduler/pool.ts).
 */
function allocationViewSql(
  registry: BlueprintRegistry,
  lease: LeaseSql,
  withMark: boolean,
  known: KnownOffer,
): Prisma.Sql {
  // Only a pass compares marks: a lease updated on its own does not read the pass job.
  const capacityMark = withMark ? capacityMarkSql(lease.resourceType) : Prisma.sql`NULL::text`;
  return Prisma.sql`(
    SELECT json_build_object('blueprints', ${candidateBlueprintsSql(registry, lease)},
      'resources', ${resourcesSql(lease, VIEW_RESOURCES, known)},
      'broken', (
        SELECT row_to_json(b) FROM (SELECT ${brokenBuildsColumns} FROM "Resource" r
        WHERE "allocatedForLeaseId" = ${lease.id} AND "statusReason" = 'resource-broken') b),
      'building', (
        SELECT id FROM "Resource" WHERE "allocatedForLeaseId" = ${lease.id} AND status = 'PENDING' LIMIT 1),
      'capacityMark', ${capacityMark}))`;
}

export type ViewResources = {
  complete: boolean;
  rows: ViewRow[] | null;
  /** Each blueprint's live resources as LiveResourceCount keeps them, by blueprint id. */
  liveCounts?: Record<string, number> | null;
};

/**
 * The type's live resources with their live lease counts (see AllocationView.resources): whole,
 * or when there are more than `limit`, the `limit` least-loaded ACTIVE ones. The counts are
 * Resource."leaseCount" (kept by the database, see its migration), so that the least-loaded few
 * are an index range per blueprint and telling a large pool from a small one counts at most
 * `limit` + 1 rows: what a large pool's view costs does not grow with the pool.
 */
function resourcesSql(lease: LeaseSql, limit: number | null, known: KnownOffer = NOTHING_KNOWN): Prisma.Sql {
  const live = Prisma.sql`r.status IN ('PENDING', 'ACTIVE', 'RELEASED', 'BROKEN')`;
  const complete =
    limit === null
      ? Prisma.sql`SELECT true AS complete`
      : Prisma.sql`SELECT count(*) <= ${limit}::int AS complete FROM (
          SELECT 1 FROM "Resource" r WHERE r."blueprintId" IN (SELECT id FROM b) AND r.type = ${lease.resourceType} AND ${live}
          LIMIT ${limit + 1}::int) x`;
  return Prisma.sql`(
    WITH b AS (SELECT b.id FROM "Blueprint" b WHERE b."resourceType" = ${lease.resourceType} AND NOT b.disabled),
    n AS (${complete}),
    -- Each picked row carries its own columns: joining the picks back to "Resource" by id was
    -- planned as a hash join over the whole table (the planner cannot know the picks are few).
    -- A row's version (see KnownResourceRows): the table's file, then xmin and ctid.
    f AS (SELECT pg_relation_filenode('"Resource"')::text || ':' AS file),
    picked AS (
      SELECT r AS rec, r.id, r."leaseCount" AS live, f.file || r.xmin::text || r.ctid::text AS version
      FROM "Resource" r, n, f
      WHERE n.complete AND r."blueprintId" IN (SELECT id FROM b) AND r.type = ${lease.resourceType} AND ${live}
      UNION ALL
      (SELECT p.rec, p.id, p.live, f.file || p.xmin::text || p.ctid::text FROM n, f, b CROSS JOIN LATERAL (
         SELECT r AS rec, r.id, r."leaseCount" AS live, r.xmin, r.ctid FROM "Resource" r
         WHERE r."blueprintId" = b.id AND r.status = 'ACTIVE' AND r.type = ${lease.resourceType}
         ORDER BY r."leaseCount", r.id LIMIT ${limit ?? 0}::int) p
       WHERE NOT n.complete ORDER BY p.live, p.id LIMIT ${limit ?? 0}::int))
    SELECT json_build_object('complete', n.complete, 'rows',
      (SELECT json_agg(json_build_object('id', p.id, 'version', p.version,
         'row', CASE WHEN k.v = p.version THEN NULL ELSE to_jsonb(p.rec) END, 'live', p.live) ORDER BY p.live, p.id)
       FROM picked p LEFT JOIN unnest(${known.ids}::int[], ${known.versions}::text[]) AS k(i, v) ON k.i = p.id),
      'liveCounts', (SELECT json_object_agg(b.id, coalesce(c.count, 0))
        FROM b LEFT JOIN "LiveResourceCount" c ON c."blueprintId" = b.id))
    FROM n)`;
}

/** Every live resource of the lease's type, for when the view's least-loaded few would not do. */
export async function allResources(ctx: TxContext, lease: Lease): Promise<ViewResources> {
  const [row] = await ctx.tx.$queryRaw<{ resources: ListedResources }[]>`
    SELECT ${resourcesSql(leaseValues(lease), null)} AS resources`;
  if (!row) return { complete: true, rows: [] };
  const { rows, ...rest } = row.resources;
  return { ...rest, rows: rows?.map(({ row, live }) => ({ row: row!, live })) ?? null };
}

/** `lease`'s view; `withMark`: with the type's pass job's capacity mark, for a pass (see AllocationView). */
export function allocationView(ctx: TxContext, lease: Lease, withMark = false): Promise<AllocationView> {
  return readView(ctx, lease.resourceType, leaseValues(lease), withMark);
}

/**
 * The view a pass reads for the first lease of `demand` that never waited (no broken builds, no
 * build of its own): a pass that expects the demand reads it with its heads (scheduler/pass.ts).
 */
export function demandView(ctx: TxContext, resourceType: string, demand: Demand): Promise<AllocationView> {
  return readView(ctx, resourceType, leaseValues({ ...demand, resourceType, id: null }), true);
}

async function readView(
  ctx: TxContext,
  resourceType: string,
  lease: LeaseSql,
  withMark: boolean,
): Promise<AllocationView> {
  const known = ctx.deps.knownResourceRows;
  for (let offer = true; ; offer = false) {
    const sql = allocationViewSql(
      ctx.deps.registry,
      lease,
      withMark,
      offer && known ? known.offer(resourceType) : NOTHING_KNOWN,
    );
    const [row] = await ctx.tx.$queryRaw<{ view: AllocationView & { resources: ListedResources | null } }[]>`
      SELECT ${sql} AS view`;
    if (!row) return { blueprints: null, resources: null, broken: null, building: null };
    const { resources, ...view } = row.view;
    if (!resources?.rows) return { ...view, resources: resources as ViewResources | null };
    const listed = resources.rows;
    const rows = known
      ? known.fill(resourceType, listed, 2 * VIEW_RESOURCES)
      : listed.map(({ row, live }) => ({ row: row!, live }));
    if (rows) return { ...view, resources: { ...resources, rows } };
  }
}

/** ViewResources as the statement gives them: each row with its version, and left out when known. */
type ListedResources = Omit<ViewResources, 'rows'> & { rows: ListedResource[] | null };

/**
 * The view's resources, decoded once, and the blueprints' questions answered from them: a
 * blueprint's first look at its resources, and the live lease count of a listed resource, need no
 * statement of their own. Later looks read the database again, so that a blueprint that lost a
 * race (see the allocation loop) sees what the winner took.
 */
export class ViewedResources {
  private readonly rows: { resource: Resource; live: number }[];
  private readonly live = new Map<number, number>();
  private readonly looked = new Set<number>();
  private readonly liveCounts: Record<string, number>;
  readonly complete: boolean;

  constructor(
    view: ViewResources,
    private readonly memo?: PassMemo,
  ) {
    this.complete = view.complete;
    this.liveCounts = view.liveCounts ?? {};
    this.rows = (view.rows ?? []).map(({ row, live }) => ({ resource: decodeResource(row), live: Number(live) }));
    // What the pass built since reading the view: in a whole pool's view, the pool is still whole.
    const listed = new Set(this.rows.map((r) => r.resource.id));
    this.rows.push(...(memo?.built ?? []).filter((b) => !listed.has(b.resource.id)));
    this.rows.sort((a, b) => a.live - b.live || a.resource.id - b.resource.id);
    for (const { resource, live } of this.rows) this.live.set(resource.id, live);
  }

  active() {
    return this.rows.filter((r) => r.resource.status === 'ACTIVE');
  }

  /**
   * Whether every ACTIVE resource without live leases is here: the view is complete, or it goes on
   * past them (least loaded first) to a resource in use.
   */
  holdsEveryIdle(): boolean {
    return this.complete || (this.rows.at(-1)?.live ?? 0) > 0;
  }

  /** `pending`: grants not yet written, flushed before a lease count is read from the database. */
  queries(tx: TxContext['tx'], pending?: GrantBatch, ctx?: TxContext): AllocationQueries {
    const db = allocationQueries(tx);
    const listed = new Set<string>(['PENDING', 'ACTIVE', 'RELEASED', 'BROKEN']);
    return {
      ...db,
      resources: async (blueprintId, statuses) => {
        if (!this.complete || this.looked.has(blueprintId) || !statuses.every((status) => listed.has(status)))
          return db.resources(blueprintId, statuses);
        this.looked.add(blueprintId);
        return this.rows
          .map((r) => r.resource)
          .filter((r) => r.blueprintId === blueprintId && statuses.includes(r.status));
      },
      attributeValues: (blueprintId, statuses, attribute) =>
        this.memo
          ? this.memo.attributeValues(blueprintId, statuses, attribute, () =>
              db.attributeValues(blueprintId, statuses, attribute),
            )
          : db.attributeValues(blueprintId, statuses, attribute),
      // The kept count as the view read it, one round trip less per pass on a full pool. A resource
      // destroyed since then runs the type's pass again when it commits, which reads it anew.
      liveResourceCount: async (blueprintId) => this.liveCounts[blueprintId] ?? db.liveResourceCount(blueprintId),
      liveLeaseCount: async (resourceId) => {
        const known = this.live.get(resourceId);
        if (known !== undefined) return known;
        if (pending && ctx) await pending.flush(ctx);
        return db.liveLeaseCount(resourceId);
      },
    };
  }
}
