import type { TxContext } from '../context.js';
import { publishLog } from '../logs.js';

/** A waiting lease the pass did not try, because one ahead of it of the same demand failed. */
export interface Queued {
  leaseId: number;
  status: string;
  blocker: unknown;
  /** The lease ahead of it in the pass's order that asked for the same thing and was not served. */
  behind: number;
}

/**
 * Records `queued-behind` on every lease of `queued` whose blocker says otherwise, with its log
 * (only when the wait changed, as waitAndRetry logs): one statement for all of them.
 */
export async function writeQueuedBehind(ctx: TxContext, queued: Queued[]): Promise<void> {
  const changed = queued.filter((q) => {
    const blocker = q.blocker as { reason?: string; leaseId?: number } | null;
    return blocker?.reason !== 'queued-behind' || blocker.leaseId !== q.behind;
  });
  if (changed.length === 0) return;
  const rows = await ctx.tx.$queryRaw<{ leaseId: number; log: bigint }[]>`
    WITH q AS (
      SELECT * FROM unnest(${changed.map((q) => q.leaseId)}::int[], ${changed.map((q) => q.behind)}::int[]) AS q(id, behind)),
    u AS (
      UPDATE "Lease" l SET blocker = json_build_object('reason', 'queued-behind', 'leaseId', q.behind)::jsonb,
        "updatedAt" = ${ctx.now}::timestamp
      FROM q WHERE l.id = q.id RETURNING l.id, q.behind),
    g AS (
      INSERT INTO "Log" (type, data, "createdAt", "leaseId")
      SELECT 'waiting-for-resources',
             json_build_object('reason', 'queued-behind', 'blockers', json_build_object('leaseId', u.behind))::jsonb,
             ${ctx.now}::timestamp, u.id
      FROM u ORDER BY u.id RETURNING id, "leaseId")
    SELECT "leaseId", id AS log FROM g`;
  const statusOf = new Map(changed.map((q) => [q.leaseId, q.status]));
  for (const row of rows)
    publishLog(ctx.after, { leaseId: row.leaseId }, row.log, { lease: statusOf.get(row.leaseId) ?? 'PENDING' });
}
