import { Prisma } from '../generated/prisma/client.js';
import type { LeaseSql } from './lease-sql.js';

/**
 * Request order per resource type: a lease that has not waited yet does not take capacity ahead of
 * an older lease that is already waiting for the same thing (same type, attributes, allowed
 * blueprints and authorizing principal, so the older one could use whatever this one would get).
 * The newcomer queues behind it; freed capacity wakes the oldest waiter first (see wake.ts), and
 * the queue drains in id order.
 *
 * Only compatible requests queue: a lease asking for something else is not held up by a waiter it
 * would not compete with.
 *
 * The older lease as a scalar subquery (NULL: none), for a column of a bigger statement
 * (allocate.ts); only a lease that has not waited yet looks.
 */
export function olderWaitingLeaseSql(lease: LeaseSql): Prisma.Sql {
  return Prisma.sql`CASE WHEN ${lease.neverWaited} THEN (
    SELECT o.id FROM "Lease" o
    WHERE o.status = 'PENDING' AND o."resourceType" = ${lease.resourceType} AND o.id < ${lease.id}
      AND o.blocker IS NOT NULL AND o.blocker->>'reason' <> 'waiting-for-resource-activation'
      AND o.attributes = ${lease.attributes}
      AND o."allowedBlueprintIds" = ${lease.allowedBlueprintIds}
      AND o."authorizingPrincipalId" IS NOT DISTINCT FROM ${lease.authorizingPrincipalId}
    ORDER BY o.id LIMIT 1) END`;
}
