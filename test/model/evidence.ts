import type { Database } from '../../src/db/database.js';

/**
 * What a failed run leaves to read: the rows and whole logs of the leases its problems name, printed
 * before the test's schema is dropped. A violation found once in 100,000 operations may not come
 * back with the same seed (kills and timing differ), so the run itself must keep the evidence.
 */
export async function printEvidence(db: Database, problems: readonly string[], limit = 12): Promise<void> {
  const ids = [...new Set(problems.flatMap((p) => [...p.matchAll(/\blease (\d+)/g)].map((m) => Number(m[1]))))].slice(
    0,
    limit,
  );
  if (ids.length === 0) return;
  const leases = await db.prisma.lease.findMany({ where: { id: { in: ids } }, orderBy: { id: 'asc' } });
  const logs = await db.prisma.log.findMany({ where: { leaseId: { in: ids } }, orderBy: { id: 'asc' } });
  const lines = leases.map((lease) => {
    const { id } = lease;
    const own = logs
      .filter((log) => log.leaseId === id)
      .map((log) => `    ${log.createdAt.toISOString()} #${log.id} ${log.type} ${JSON.stringify(log.data)}`);
    return [`  lease ${id} ${JSON.stringify(lease)}`, ...own].join('\n');
  });
  console.log(`model: evidence for the problems above\n${lines.join('\n')}`);
}
