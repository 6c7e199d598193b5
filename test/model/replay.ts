import type { Database } from '../../src/db/database.js';
import type { LeaseStatus, ResourceStatus } from '../../src/generated/prisma/client.js';
import type { LogChecker, LogRow } from './log-checker.js';

const PAGE = 20_000;

/** Feeds the whole Log table to the checker in id order, a page at a time (the long mode writes ~10⁶ rows). */
export async function replayLogs(db: Database, checker: LogChecker): Promise<void> {
  let after = -1n;
  for (let pages = 0; pages < 10_000; pages++) {
    const rows = await db.prisma.$queryRaw<LogRow[]>`
      SELECT id, type, "leaseId", "resourceId", "blueprintId", data, "createdAt"
      FROM "Log" WHERE id > ${after} ORDER BY id LIMIT ${PAGE}`;
    for (const row of rows) checker.feed(row);
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]!.id;
  }
  throw new Error('the log did not end within 10,000 pages');
}

export async function finalStatuses(db: Database): Promise<{
  leases: Map<number, LeaseStatus>;
  resources: Map<number, ResourceStatus>;
}> {
  const leases = await db.prisma.lease.findMany({ select: { id: true, status: true } });
  const resources = await db.prisma.resource.findMany({ select: { id: true, status: true } });
  return {
    leases: new Map(leases.map((l) => [l.id, l.status])),
    resources: new Map(resources.map((r) => [r.id, r.status])),
  };
}

/** Host-pool resources by binding: two live resources must never share one. */
export async function bindingsOf(db: Database, blueprintId: number): Promise<Map<number, string>> {
  const resources = await db.prisma.resource.findMany({
    where: { blueprintId },
    select: { id: true, attributes: true },
  });
  return new Map(resources.map((r) => [r.id, `binding ${(r.attributes as { binding?: string }).binding}`]));
}
