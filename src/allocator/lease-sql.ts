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
