import type { Lease } from '../../generated/prisma/client.js';
import type { TxContext } from '../context.js';

/** Waiting leases read per demand shape (attributes) and per pass: see readHeads. */
export const HEADS_PER_DEMAND = 16;
/** Demand shapes read per pass; the next pass reads the next (a pass that served any asks again). */
export const SHAPES_PER_PASS = 64;

/**
 * The type's turn: its queue row, locked until the pass commits, so that one pass at a time runs
 * per type across every process. Null: no such row.
 */
export async function takeTurn(ctx: TxContext, queueId: number): Promise<string | null> {
  const [row] = await ctx.tx.$queryRaw<{ resourceType: string }[]>`
    SELECT "resourceType" FROM "ResourceTypeQueue" WHERE id = ${queueId} FOR NO KEY UPDATE`;
  return row?.resourceType ?? null;
}

/**
 * The heads of the type's queue, row-locked: for each demand shape (distinct attributes, found by
 * a loose index scan, so that a thousand waiting leases of one shape cost one step, not a
 * thousand), its first HEADS_PER_DEMAND in priority then arrival order; and the oldest
 * HEADS_PER_DEMAND of the whole type, whose aging may have lifted them past any priority. What a
 * pass reads thus depends on how many shapes wait, not how many leases.
 *
 * SKIP LOCKED: a lease whose own update holds it (a release, a wait timeout) is left to it; that
 * update asks for another pass if the lease is still waiting.
 */
export async function readHeads(ctx: TxContext, resourceType: string): Promise<Lease[]> {
  return ctx.tx.$queryRaw<Lease[]>`
    WITH RECURSIVE shapes AS (
      (SELECT attributes, 1 AS n FROM "Lease"
       WHERE "resourceType" = ${resourceType} AND status = 'PENDING' ORDER BY attributes LIMIT 1)
      UNION ALL
      SELECT (SELECT l.attributes FROM "Lease" l
              WHERE l."resourceType" = ${resourceType} AND l.status = 'PENDING' AND l.attributes > s.attributes
              ORDER BY l.attributes LIMIT 1), s.n + 1
      FROM shapes s WHERE s.attributes IS NOT NULL AND s.n < ${SHAPES_PER_PASS}::int),
    heads AS (
      SELECT h.id FROM shapes s CROSS JOIN LATERAL (
        SELECT l.id FROM "Lease" l
        WHERE l."resourceType" = ${resourceType} AND l.status = 'PENDING' AND l.attributes = s.attributes
        ORDER BY l.priority DESC, l.id LIMIT ${HEADS_PER_DEMAND}::int) h
      WHERE s.attributes IS NOT NULL
      UNION
      (SELECT id FROM "Lease" WHERE "resourceType" = ${resourceType} AND status = 'PENDING'
       ORDER BY id LIMIT ${HEADS_PER_DEMAND}::int))
    SELECT * FROM "Lease"
    WHERE id IN (SELECT id FROM heads) AND status = 'PENDING'
    ORDER BY id
    FOR NO KEY UPDATE SKIP LOCKED`;
}
