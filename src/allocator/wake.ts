import { Prisma } from '../generated/prisma/client.js';
import type { TxContext } from './context.js';

/**
 * Capacity of `resourceType` may have appeared: make the update of the `count` oldest PENDING
 * leases of that type due now, so that waiting leases are served in request order and a freed
 * unit is handed to exactly one waiter instead of being raced for by all of them.
 *
 * A lease whose update is due already is passed over (it will look anyway); one whose update is
 * running right now is marked to run once more, since it may have decided to wait just before this
 * capacity appeared (the lost wake-up), but only when no idle waiter is left: a running update may
 * already be on its way to the capacity a previous wake-up freed, and waking it again would waste
 * this wake-up while an idle waiter sleeps on. SKIP LOCKED makes two transactions that free capacity at
 * the same moment wake two different leases rather than the same one twice.
 */
export async function wakeWaitingLeases(
  ctx: TxContext,
  resourceType: string,
  count = ctx.deps.options.wakeBatch,
): Promise<number> {
  if (count <= 0) return 0;
  const woken = await ctx.tx.$queryRaw<{ targetId: number }[]>`${wakeSql(ctx, resourceType, count, null)}`;
  if (woken.length > 0) ctx.after.jobScheduled(ctx.now);
  return woken.length;
}

/**
 * The wake-up as one statement (RETURNING the woken targets), also for a WITH clause of a bigger
 * one. `except`: a lease that must not be woken, because the same statement moves it on (it is
 * still PENDING in that statement's snapshot); `onlyIf`: a condition the bigger statement's own
 * write must meet first.
 */
export function wakeSql(
  ctx: TxContext,
  resourceType: string,
  count: number,
  except: number | null,
  onlyIf: Prisma.Sql = Prisma.empty,
): Prisma.Sql {
  return Prisma.sql`
    UPDATE "Job" SET
      "runAt" = CASE WHEN "lockedBy" IS NOT NULL AND NOT rerun THEN ${ctx.now}::timestamp
                     ELSE LEAST("runAt", ${ctx.now}::timestamp) END,
      rerun = "lockedBy" IS NOT NULL
    WHERE id IN (
      SELECT j.id FROM "Lease" l JOIN "Job" j ON j.key = 'lease:' || l.id
      WHERE l.status = 'PENDING' AND l."resourceType" = ${resourceType}
        AND l.id IS DISTINCT FROM ${except}::int
        AND (j."runAt" > ${ctx.now}::timestamp OR (j."lockedBy" IS NOT NULL AND NOT j.rerun))
      ORDER BY j."lockedBy" IS NOT NULL, l.id
      LIMIT ${count}
      FOR UPDATE OF j SKIP LOCKED) ${onlyIf}
    RETURNING "targetId"`;
}
