import type { Database } from '../../src/db/database.js';

/**
 * What a failed run leaves to read: the rows and whole logs of the leases its problems name, and
 * every grant of the passes they name, read before the test's schema is dropped. A violation
 * found once in many runs may not come back with the same seed (kills and timing differ), so the
 * run itself must keep the evidence; it goes into the failure's message too, since a long suite's
 * output keeps only its end.
 */
export async function readEvidence(db: Database, problems: readonly string[], limit = 12): Promise<string> {
  const ids = [...new Set(problems.flatMap((p) => [...p.matchAll(/\blease (\d+)/g)].map((m) => Number(m[1]))))].slice(
    0,
    limit,
  );
  if (ids.length === 0) return '';
  const leases = await db.prisma.lease.findMany({ where: { id: { in: ids } }, orderBy: { id: 'asc' } });
  const logs = await db.prisma.log.findMany({ where: { leaseId: { in: ids } }, orderBy: { id: 'asc' } });
  const lines = leases.map((lease) => {
    const { id } = lease;
    const own = logs
      .filter((log) => log.leaseId === id)
      .map((log) => `    ${log.createdAt.toISOString()} #${log.id} ${log.type} ${JSON.stringify(log.data)}`);
    return [`  lease ${id} ${JSON.stringify(lease)}`, ...own].join('\n');
  });
  const passTimes = [...new Set(problems.flatMap((p) => [...p.matchAll(/\bpass at (\S+Z)/g)].map((m) => m[1]!)))];
  for (const at of passTimes.slice(0, 4)) {
    const grants = await db.prisma.log.findMany({
      where: { type: 'lease-acquired', createdAt: new Date(at) },
      orderBy: { id: 'asc' },
      select: { id: true, leaseId: true, resourceId: true },
    });
    lines.push(
      `  pass at ${at} granted ${grants.map((g) => `lease ${g.leaseId} resource ${g.resourceId} (#${g.id})`).join(', ')}`,
    );
  }
  return `model: evidence for the problems above\n${lines.join('\n')}`;
}
