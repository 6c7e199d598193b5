import { Prisma, type Lease } from '../generated/prisma/client.js';

/**
 * The fields of a lease that the allocator's reads depend on, as SQL: either the values of a lease
 * already read, or the columns of a lease row in the same statement (so that an update can lock
 * its lease and read what allocation needs in one round trip).
 */
export interface LeaseSql {
  id: Prisma.Sql;
  resourceType: Prisma.Sql;
  attributes: Prisma.Sql;
  allowedBlueprintIds: Prisma.Sql;
  authorizingPrincipalId: Prisma.Sql;
  /** True when the lease has not waited yet. */
  neverWaited: Prisma.Sql;
}

export function leaseValues(lease: Lease): LeaseSql {
  return {
    id: Prisma.sql`${lease.id}::int`,
    resourceType: Prisma.sql`${lease.resourceType}::text`,
    attributes: Prisma.sql`${JSON.stringify(lease.attributes ?? {})}::jsonb`,
    allowedBlueprintIds: Prisma.sql`${lease.allowedBlueprintIds}::int[]`,
    authorizingPrincipalId: Prisma.sql`${lease.authorizingPrincipalId}::int`,
    neverWaited: lease.blocker === null ? Prisma.sql`true` : Prisma.sql`false`,
  };
}

export function leaseColumns(alias: string): LeaseSql {
  const column = (name: string) => Prisma.raw(`${alias}."${name}"`);
  return {
    id: column('id'),
    resourceType: column('resourceType'),
    attributes: Prisma.sql`COALESCE(${column('attributes')}, '{}'::jsonb)`,
    allowedBlueprintIds: column('allowedBlueprintIds'),
    authorizingPrincipalId: column('authorizingPrincipalId'),
    neverWaited: Prisma.sql`${column('blocker')} IS NULL`,
  };
}
