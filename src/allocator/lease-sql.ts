import { Prisma, type Lease } from '../generated/prisma/client.js';

/** The fields of a lease that the allocator's reads depend on, as SQL values. */
export interface LeaseSql {
  id: Prisma.Sql;
  resourceType: Prisma.Sql;
  attributes: Prisma.Sql;
  allowedBlueprintIds: Prisma.Sql;
  authorizingPrincipalId: Prisma.Sql;
}

/** `id` null: no lease in particular, only what its demand asks for (see demand.ts). */
export function leaseValues(
  lease: Pick<Lease, 'resourceType' | 'attributes' | 'allowedBlueprintIds' | 'authorizingPrincipalId'> & {
    id: number | null;
  },
): LeaseSql {
  return {
    id: Prisma.sql`${lease.id}::int`,
    resourceType: Prisma.sql`${lease.resourceType}::text`,
    attributes: Prisma.sql`${JSON.stringify(lease.attributes ?? {})}::jsonb`,
    allowedBlueprintIds: Prisma.sql`${lease.allowedBlueprintIds}::int[]`,
    authorizingPrincipalId: Prisma.sql`${lease.authorizingPrincipalId}::int`,
  };
}

/**
 * "The lease `alias` is still waiting", for a statement that finds its leases by id. Compared as
 * text so that the index of waiting leases alone (partial: status = 'PENDING', keyed by type and
 * shape, with the id last) cannot serve the lookup: a plan made while that index was small (a
 * generic plan, kept for the connection's life) looked each lease up there, scanning the entries
 * of every lease waiting before the one it wanted, so that a pass's cost grew with its queue.
 * The primary key is then the only index that can.
 */
export function stillWaiting(alias?: string): Prisma.Sql {
  return Prisma.raw(`${alias ? `"${alias}".` : ''}status::text = 'PENDING'`);
}
