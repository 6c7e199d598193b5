import type { Lease } from '../generated/prisma/client.js';
import type { TxContext } from './context.js';

/**
 * Request order per resource type: a lease that has not waited yet does not take capacity ahead of
 * an older lease that is already waiting for the same thing (same type, attributes, allowed
 * blueprints and authorizing principal, so the older one could use whatever this one would get).
 * The newcomer queues behind it; freed capacity wakes the oldest waiter first (see wake.ts), and
 * the queue drains in id order.
 *
 * Only compatible requests queue: a lease asking for something else is not held up by a waiter it
 * would not compete with.
 */
export async function olderWaitingLease(ctx: TxContext, lease: Lease): Promise<number | null> {
  if (lease.blocker !== null) return null;
  const rows = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM "Lease"
    WHERE status = 'PENDING' AND "resourceType" = ${lease.resourceType} AND id < ${lease.id}
      AND blocker IS NOT NULL AND blocker->>'reason' <> 'waiting-for-resource-activation'
      AND attributes = ${JSON.stringify(lease.attributes ?? {})}::jsonb
      AND "allowedBlueprintIds" = ${lease.allowedBlueprintIds}::int[]
      AND "authorizingPrincipalId" IS NOT DISTINCT FROM ${lease.authorizingPrincipalId}::int
    ORDER BY id LIMIT 1`;
  return rows[0]?.id ?? null;
}
