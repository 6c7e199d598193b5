import { Prisma, type Resource } from '../generated/prisma/client.js';
import type { AllocationQueries } from '../blueprints/implementation.js';
import { readOnly } from '../db/statements.js';
import type { Tx } from './context.js';

// Raw SQL: blueprints ask these on nearly every allocation attempt. They only read (readOnly): a
// pass may send them from a try it otherwise keeps from the database (scheduler/watched-tx.ts).
export function allocationQueries(tx: Tx): AllocationQueries {
  return {
    resources: (blueprintId, statuses) =>
      tx.$queryRaw<Resource[]>(
        readOnly(Prisma.sql`
        SELECT * FROM "Resource" WHERE "blueprintId" = ${blueprintId} AND status::text = ANY(${[...statuses]}::text[])
        ORDER BY id`),
      ),
    attributeValues: async (blueprintId, statuses, attribute) => {
      const rows = await tx.$queryRaw<{ value: string }[]>(
        readOnly(Prisma.sql`
        SELECT attributes->>${attribute} AS value FROM "Resource"
        WHERE "blueprintId" = ${blueprintId} AND status::text = ANY(${[...statuses]}::text[]) AND attributes->>${attribute} IS NOT NULL`),
      );
      return rows.map((r) => r.value);
    },
    liveResourceCount: async (blueprintId) => {
      const [row] = await tx.$queryRaw<{ n: number }[]>(
        readOnly(Prisma.sql`
        SELECT count AS n FROM "LiveResourceCount" WHERE "blueprintId" = ${blueprintId}`),
      );
      return row?.n ?? 0;
    },
    liveLeaseCount: async (resourceId) => {
      const [row] = await tx.$queryRaw<{ n: number }[]>(
        readOnly(Prisma.sql`
        SELECT count(*)::int AS n FROM "Lease" WHERE "resourceId" = ${resourceId} AND status IN ('ACQUIRED', 'ACTIVE')`),
      );
      return row?.n ?? 0;
    },
    resourcesBuiltFor: (blueprintId, leaseId) =>
      tx.$queryRaw<Resource[]>(
        readOnly(Prisma.sql`
        SELECT * FROM "Resource" WHERE "allocatedForLeaseId" = ${leaseId} AND "blueprintId" = ${blueprintId} ORDER BY id`),
      ),
    resourceFrontier: async (blueprintId) => {
      const [row] = await tx.$queryRaw<{ newest: number | null; pending: number }[]>(
        readOnly(Prisma.sql`
        SELECT max(id) AS newest, count(*) FILTER (WHERE status = 'PENDING')::int AS pending
        FROM "Resource" WHERE "blueprintId" = ${blueprintId}`),
      );
      return { newestId: row?.newest ?? 0, pendingCount: row?.pending ?? 0 };
    },
  };
}
