import type { TxContext } from '../context.js';
import { publishLog } from '../logs.js';
import type { Blocker } from '../waiting.js';
import { sameWait } from '../waiting.js';

/** A waiting lease the pass did not serve without trying it, and why. */
export interface Blocked {
  lease: { id: number; status: string; blocker: unknown };
  blocker: Blocker;
}

/**
 * Records each blocker that changed, with its log (as waitAndRetry logs a wait: only when it
 * changed), for every lease of `blocked` in one statement.
 */
export async function writeBlockers(ctx: TxContext, blocked: readonly Blocked[]): Promise<void> {
  const changed = blocked.filter((b) => !sameWait(b.lease.blocker, b.blocker));
  if (changed.length === 0) return;
  const rows = await ctx.tx.$queryRaw<{ leaseId: number; log: bigint }[]>`
    WITH q AS (
      SELECT * FROM unnest(${changed.map((b) => b.lease.id)}::int[], ${changed.map((b) => JSON.stringify(b.blocker))}::text[])
        AS q(id, blocker)),
    u AS (
      UPDATE "Lease" l SET blocker = q.blocker::jsonb, "updatedAt" = ${ctx.now}::timestamp
      FROM q WHERE l.id = q.id RETURNING l.id, q.blocker::jsonb AS blocker),
    g AS (
      INSERT INTO "Log" (type, data, "createdAt", "leaseId")
      SELECT 'waiting-for-resources',
             jsonb_build_object('reason', u.blocker->'reason', 'blockers', u.blocker - 'reason'),
             ${ctx.now}::timestamp, u.id
      FROM u ORDER BY u.id RETURNING id, "leaseId")
    SELECT "leaseId", id AS log FROM g`;
  const statusOf = new Map(changed.map((b) => [b.lease.id, b.lease.status]));
  for (const row of rows)
    publishLog(ctx.after, { leaseId: row.leaseId }, row.log, { lease: statusOf.get(row.leaseId) ?? 'PENDING' });
}
