import { Prisma, type Lease } from '../../generated/prisma/client.js';
import { capacityMarkSql } from '../allocation-view.js';
import { stillWaiting } from '../lease-sql.js';
import { planGenerically, planInIndexOrder } from '../../db/statements.js';
import type { Tx, TxContext } from '../context.js';

/** Waiting leases read per demand shape (attributes) and per pass: see readHeads. */
export const HEADS_PER_DEMAND = 16;
/** Demand shapes read per pass; the next pass reads the next (a pass that served any asks again). */
export const SHAPES_PER_PASS = 64;
/** The oldest waiting leases of the type read per pass, whatever their shape or priority. */
export const OLDEST_PER_PASS = 64;

/**
 * The type's turn: its queue row, locked until the pass commits, so that one pass at a time runs
 * per type across every process. The same statement moves the type's capacity epoch on when its
 * pass job carries a capacity mark the epoch has not moved on for, or when the epoch is older than
 * `staleBefore` (see capacity-epoch.ts). The job's mark is read in the statement's snapshot, taken
 * before the turn may have to wait: a mark written meanwhile is seen by the next pass, which the
 * writer asked for. Null: no such row.
 *
 * `mark`: the job's mark as the statement read it, which the pass's later reads of the mark are
 * compared with (a moved mark: capacity may have freed since the turn). Not the queue's: a job
 * row written again by a request that frees nothing has no mark until a change that may free
 * capacity writes its own, while the queue keeps the mark of a job row deleted since; compared
 * with that, an unmoved mark would read as moved in every pass, and every pass would try the
 * leases its epoch refuses without a try, and probe each lease behind them.
 */
export async function takeTurn(
  ctx: TxContext,
  queueId: number,
): Promise<{ resourceType: string; epoch: number; mark: string | null } | null> {
  const staleBefore = new Date(ctx.now.getTime() - ctx.deps.options.idleRetryMs);
  // q is the row as it is once the turn is had (a pass that held it may have moved the epoch on).
  // Generic: the pass's first statement, so the whole pass runs generic plans (docs/design.md), which
  // its statements were made for; PostgreSQL's own choice planned them again on many runs.
  const moves = Prisma.sql`((j.mark IS NOT NULL AND j.mark IS DISTINCT FROM q."capacityMark")
                            OR q."epochAt" <= ${staleBefore}::timestamp)`;
  const [row] = await ctx.tx.$queryRaw<{ resourceType: string; epoch: number; mark: string | null }[]>(
    planGenerically(Prisma.sql`
    UPDATE "ResourceTypeQueue" q SET
      "capacityEpoch" = q."capacityEpoch" + CASE WHEN ${moves} THEN 1 ELSE 0 END,
      "epochAt" = CASE WHEN ${moves} THEN ${ctx.now}::timestamp ELSE q."epochAt" END,
      "capacityMark" = COALESCE(j.mark, q."capacityMark")
    FROM (SELECT (SELECT "capacityMark" FROM "Job" WHERE key = ${`pass:${queueId}`}) AS mark) j
    WHERE q.id = ${queueId}
    RETURNING q."resourceType", q."capacityEpoch" AS epoch, j.mark::text AS mark`),
  );
  return row ?? null;
}

/**
 * The type's pass job's capacity mark as it is now, as a view reads it (allocation-view.ts): what
 * a pass compares with the mark a refusal saw, to learn whether capacity may have freed since.
 */
export async function capacityMark(ctx: TxContext, resourceType: string): Promise<string | null> {
  return markOf(await ctx.tx.$queryRaw(capacityMarkRead(resourceType)));
}

/** capacityMark's statement, and its answer's mark (see markOf). */
export function capacityMarkRead(resourceType: string): Prisma.Sql {
  return Prisma.sql`SELECT ${capacityMarkSql(resourceType)} AS mark`;
}

export function markOf(rows: unknown): string | null {
  return (rows as { mark: string | null }[])[0]?.mark ?? null;
}

/**
 * The heads of the type's queue, row-locked: for each demand shape (distinct attributes and
 * allowed blueprints, found by a loose index scan, so that a thousand waiting leases of one shape
 * cost one step, not a thousand), its first HEADS_PER_DEMAND in band order (priority plus aging,
 * then arrival); and the oldest OLDEST_PER_PASS of the whole type. What a pass reads thus depends
 * on how many shapes and priorities wait, not how many leases.
 *
 * The oldest are what reaches a shape past the SHAPES_PER_PASS first, and what lets one pass
 * serve a burst of one shape more than HEADS_PER_DEMAND at a time. Neither is the case when the
 * type's oldest lease waits patiently in the current capacity epoch and the shapes were read in
 * full: the oldest are then a backlog this pass refuses without a try, and reading them (rows to
 * lock, write and send on every pass) was most of what a long queue added to a pass's cost.
 *
 * Band order is not an index order: an older lease of a lower priority may have aged past newer
 * ones of a higher. But within one priority the oldest has the highest band, so the shape's best
 * are among the first HEADS_PER_DEMAND of each priority it has (a second loose scan, over the
 * bounded range of priorities); those are ranked by band and the best kept. Taking the first of
 * the shape by priority alone missed an aged lease behind a run of newer higher ones (found by
 * the model check: a later lease of its demand was granted what it could use).
 *
 * A shape is its allowed blueprints too: leases of one set of attributes but other blueprints
 * do not wait for the same capacity, and a shape's first ones, waiting for a blueprint that is
 * full, must not hide one behind them that another blueprint could serve (a lease of a lower band
 * and of other attributes was granted what it could use).
 *
 * SKIP LOCKED: a lease whose own update holds it (a release, a wait timeout) is left to it, and
 * `skipped` says how many were. That update asks for another pass if the lease is still waiting,
 * but only if it commits: one that dies first (its claim expired, its process killed) takes that
 * request with it, so the pass must look again itself (found by the model check, NO_SKIP_RETRY).
 */
export async function readHeads(
  ctx: TxContext,
  resourceType: string,
): Promise<{ heads: Lease[]; skipped: number; owners: Map<number, OwnerRow> }> {
  const rows = await ctx.tx.$queryRaw<(Lease & { __heads: number; __owners: OwnerRow[] | null })[]>(
    headsSql(resourceType, ctx.now.getTime(), ctx.deps.options.agingIntervalMs),
  );
  const heads = rows
    .filter((row) => row.id !== null)
    .map(({ __heads: _, __owners: _owners, ...lease }) => lease as Lease);
  const owners = new Map((rows[0]?.__owners ?? []).map((row) => [row.id, row]));
  return { heads, skipped: (rows[0]?.__heads ?? 0) - heads.length, owners };
}

/**
 * readHeads' statement. Every read of "Lease" in it is an index range of a bounded length or a
 * lookup by id: a plan that scans the type's waiting leases would make a pass's cost grow with its
 * queue. The waiting leases' own index (partial: PENDING only) is what keeps the planner on it
 * when the table's statistics were taken before a burst of requests; and it is planned in index
 * order (planInIndexOrder): statistics taken while next to no lease waited, or a plan made then
 * and kept for the connection's life, had it sort all of a type's waiting leases to find each
 * shape's first, on every pass.
 */
export function headsSql(resourceType: string, nowMs: number, agingMs: number): Prisma.Sql {
  return planInIndexOrder(Prisma.sql`
    WITH RECURSIVE shapes AS (
      (SELECT attributes, "allowedBlueprintIds" AS allowed, 1 AS n FROM "Lease"
       WHERE "resourceType" = ${resourceType} AND status = 'PENDING' ORDER BY attributes, "allowedBlueprintIds" LIMIT 1)
      UNION ALL
      SELECT x.attributes, x.allowed, s.n + 1
      FROM shapes s CROSS JOIN LATERAL (
        SELECT l.attributes, l."allowedBlueprintIds" AS allowed FROM "Lease" l
        WHERE l."resourceType" = ${resourceType} AND l.status = 'PENDING'
          AND (l.attributes, l."allowedBlueprintIds") > (s.attributes, s.allowed)
        ORDER BY l.attributes, l."allowedBlueprintIds" LIMIT 1) x
      WHERE s.n < ${SHAPES_PER_PASS}::int),
    levels AS (
      SELECT s.attributes, s.allowed,
        (SELECT l.priority FROM "Lease" l
         WHERE l."resourceType" = ${resourceType} AND l.status = 'PENDING' AND l.attributes = s.attributes
           AND l."allowedBlueprintIds" = s.allowed
         ORDER BY l.priority DESC LIMIT 1) AS priority
      FROM shapes s
      UNION ALL
      SELECT v.attributes, v.allowed,
        (SELECT l.priority FROM "Lease" l
         WHERE l."resourceType" = ${resourceType} AND l.status = 'PENDING' AND l.attributes = v.attributes
           AND l."allowedBlueprintIds" = v.allowed AND l.priority < v.priority
         ORDER BY l.priority DESC LIMIT 1)
      FROM levels v WHERE v.priority IS NOT NULL),
    candidates AS (
      SELECT c.id, v.attributes, v.allowed,
        c.priority + floor(GREATEST(0, ${nowMs}::float8 - extract(epoch FROM c."createdAt") * 1000) / ${agingMs}::float8) AS band
      FROM levels v CROSS JOIN LATERAL (
        -- The priority as a range of one, and in the order: with an equality the order would be
        -- the id's alone, which the index of every lease by status, type and id also gives, and a
        -- plan from statistics that see few waiting would read the type's queue there, shape
        -- after shape, for each shape's first few. Only the shape's own index gives this order.
        SELECT l.id, l.priority, l."createdAt" FROM "Lease" l
        WHERE l."resourceType" = ${resourceType} AND l.status = 'PENDING' AND l.attributes = v.attributes
          AND l."allowedBlueprintIds" = v.allowed AND l.priority >= v.priority AND l.priority <= v.priority
        ORDER BY l.priority DESC, l.id LIMIT ${HEADS_PER_DEMAND}::int) c
      WHERE v.priority IS NOT NULL),
    heads AS (
      SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY attributes, allowed ORDER BY band DESC, id) AS rank FROM candidates) ranked
      WHERE rank <= ${HEADS_PER_DEMAND}::int
      UNION
      (SELECT id FROM "Lease" WHERE "resourceType" = ${resourceType} AND status = 'PENDING'
         AND (EXISTS (SELECT 1 FROM shapes WHERE n = ${SHAPES_PER_PASS}::int)
              OR NOT EXISTS (${settledOldestSql(resourceType)}))
       ORDER BY id LIMIT ${OLDEST_PER_PASS}::int)),
    -- By id, one head at a time (LIMIT keeps the lookup from being flattened into a join, which the
    -- planner may make a scan of every waiting lease), by its primary key (stillWaiting).
    locked AS (
      SELECT l.* FROM heads h CROSS JOIN LATERAL (
        SELECT * FROM "Lease" l WHERE l.id = h.id AND ${stillWaiting('l')} LIMIT 1) l
      FOR NO KEY UPDATE OF l SKIP LOCKED),
    owners AS (${ownersSql(resourceType, Prisma.sql`SELECT "ownerId" FROM locked`)})
    -- One row even when every head was skipped, so that the count of heads always comes back.
    SELECT h.n AS __heads, (SELECT json_agg(o) FROM owners o) AS __owners, l.*
    FROM (SELECT count(*)::int AS n FROM heads) h LEFT JOIN locked l ON true
    ORDER BY l.id`);
}

/**
 * A row when the type's oldest waiting lease waits patiently in the queue's current capacity epoch
 * (capacity-epoch.ts, read after the pass's turn moved it): the queue is a backlog the passes of
 * this epoch refuse without a try. Reading its oldest then adds nothing the shapes' heads do not
 * hold, only rows to lock and send (see headsSql).
 */
function settledOldestSql(resourceType: string): Prisma.Sql {
  return Prisma.sql`
    SELECT 1 FROM (SELECT "gangId", blocker FROM "Lease" WHERE "resourceType" = ${resourceType} AND status = 'PENDING'
                   ORDER BY id LIMIT 1) o
    WHERE o."gangId" IS NULL
      AND o.blocker->>'epoch' = (SELECT "capacityEpoch"::text FROM "ResourceTypeQueue" WHERE "resourceType" = ${resourceType})`;
}

/** What the policies need of an owner of waiting leases, for this type. */
export interface OwnerRow {
  id: number;
  weight: number;
  /** Its ACQUIRED and ACTIVE leases of the type; 0 when the pass has no use for them (see ownersSql). */
  live: number;
  /** Its quota of live leases of the type; null: none. */
  quota: number | null;
}

/**
 * One owner's row for `resourceType`, read as readHeads reads the heads' owners, for a judgement
 * made outside that read (the dry run judges a request as the pass would). Its live count is read
 * only when it has a quota (see ownersSql). Undefined: no such principal.
 */
export async function readOwner(tx: Tx, resourceType: string, ownerId: number): Promise<OwnerRow | undefined> {
  const [row] = await tx.$queryRaw<OwnerRow[]>(ownersSql(resourceType, Prisma.sql`SELECT ${ownerId}::int`));
  return row;
}

/**
 * The owners of the leases `ownerIds` selects: weights, live counts and quotas for
 * `resourceType`. Read with the heads (readHeads), in the same statement.
 *
 * An owner's live count is a count of its leases of the type, as many rows as it holds (a CI
 * fleet's one principal may hold thousands). The pass needs it only to compare owners' shares
 * (more than one owner among `ownerIds`, leases without an owner being one) or to hold an
 * owner to its quota; otherwise it is not counted.
 */
function ownersSql(resourceType: string, ownerIds: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    SELECT o.id, o.weight, o.quota,
      CASE WHEN o.quota IS NOT NULL OR (SELECT count(DISTINCT coalesce(w, 0)) FROM (${ownerIds}) AS x(w)) > 1 THEN
      (SELECT count(*)::int FROM "Lease" l
       WHERE l."resourceType" = ${resourceType} AND l."ownerId" = o.id AND l.status IN ('ACQUIRED', 'ACTIVE'))
      ELSE 0 END AS live
    FROM (SELECT p.id, p.weight,
      (SELECT q."maxLeases" FROM "Quota" q WHERE q."principalId" = p.id AND q."resourceType" = ${resourceType}) AS quota
      FROM "Principal" p WHERE p.id IN (${ownerIds})) o`;
}

/**
 * Every part of the gangs `gangIds`, row-locked, with the turns of the other resource types they
 * ask for (taken without waiting: a pass of another type holding its turn would be waiting for
 * ours otherwise). A gang whose parts or turns could not all be had is not served in this pass.
 */
/** A pass's gangs: each one's parts it locked, each one's size, and the types whose turns it holds. */
export interface Gangs {
  parts: Map<number, Lease[]>;
  sizes: Map<number, number>;
  turns: Set<string>;
}

export async function readGangs(ctx: TxContext, resourceType: string, gangIds: readonly number[]): Promise<Gangs> {
  const parts = new Map<number, Lease[]>();
  const turns = new Set<string>([resourceType]);
  if (gangIds.length === 0) return { parts, sizes: new Map(), turns };
  const rows = await ctx.tx.$queryRaw<Lease[]>`
    SELECT * FROM "Lease" WHERE "gangId" = ANY(${[...new Set(gangIds)]}::int[]) ORDER BY id
    FOR NO KEY UPDATE SKIP LOCKED`;
  for (const row of rows) {
    const list = parts.get(row.gangId!) ?? [];
    list.push(row);
    parts.set(row.gangId!, list);
  }
  const others = [...new Set(rows.map((r) => r.resourceType))].filter((t) => t !== resourceType).sort();
  if (others.length > 0) {
    const taken = await ctx.tx.$queryRaw<{ resourceType: string }[]>`
      SELECT "resourceType" FROM "ResourceTypeQueue" WHERE "resourceType" = ANY(${others}::text[])
      ORDER BY id FOR NO KEY UPDATE SKIP LOCKED`;
    for (const row of taken) turns.add(row.resourceType);
  }
  return { parts, sizes: await gangSizes(ctx, gangIds), turns };
}

/** How many parts each gang has (locked or not), to tell a gang read whole from one read in part. */
async function gangSizes(ctx: TxContext, gangIds: readonly number[]): Promise<Map<number, number>> {
  const rows = await ctx.tx.$queryRaw<{ gangId: number; n: number }[]>`
    SELECT "gangId", count(*)::int AS n FROM "Lease" WHERE "gangId" = ANY(${[...new Set(gangIds)]}::int[])
    GROUP BY "gangId"`;
  return new Map(rows.map((r) => [r.gangId, r.n]));
}

/**
 * Whether the next read of the queue may reach leases this pass's did not: a shape was read to
 * its limit, or as many shapes as a pass reads, and some of what was read left the queue (granted
 * or ended). Nothing having left, the next read would be this one, and served the same: a lease
 * nothing can serve now, with more of its shape behind it, must not make every pass run twice.
 */
export function readsFurther(heads: readonly Lease[], left: ReadonlySet<number>): boolean {
  const perShape = new Map<string, { read: number; left: number }>();
  for (const lease of heads) {
    // The shape as readHeads reads it: attributes and allowed blueprints.
    const shape = JSON.stringify([lease.attributes ?? {}, lease.allowedBlueprintIds]);
    const count = perShape.get(shape) ?? { read: 0, left: 0 };
    count.read++;
    if (left.has(lease.id)) count.left++;
    perShape.set(shape, count);
  }
  const counts = [...perShape.values()];
  if (perShape.size >= SHAPES_PER_PASS) return counts.some((c) => c.left > 0);
  return counts.some((c) => c.read >= HEADS_PER_DEMAND && c.left > 0);
}
