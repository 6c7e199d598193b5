import type { Database } from '../../src/db/database.js';
import type { Fleet } from './fleet.js';

// Checks of one consistent snapshot of the tables (each a single statement): cheap enough to run
// while the operations go on, and they see what the log replay might explain away.

export async function snapshotViolations(db: Database, fleet: Fleet): Promise<string[]> {
  const exclusive = [fleet.ids.fast, fleet.ids.later];
  const doubled = await db.prisma.$queryRaw<{ resourceId: number; leases: string }[]>`
    SELECT l."resourceId", string_agg(l.id::text, ',') AS leases
    FROM "Lease" l JOIN "Resource" r ON r.id = l."resourceId"
    WHERE r."blueprintId" = ANY(${exclusive}::int[]) AND l.status IN ('ACQUIRED', 'ACTIVE')
    GROUP BY l."resourceId" HAVING count(*) > 1`;
  const live = await db.prisma.$queryRaw<{ blueprintId: number; n: number }[]>`
    SELECT "blueprintId", count(*)::int AS n FROM "Resource"
    WHERE status IN ('PENDING', 'ACTIVE', 'RELEASED', 'BROKEN') GROUP BY "blueprintId"`;
  return [
    ...doubled.map((row) => `snapshot: exclusive resource ${row.resourceId} has leases ${row.leases} at once`),
    ...live
      .filter((row) => row.n > (fleet.rules(row.blueprintId)?.limit ?? Infinity))
      .map((row) => `snapshot: blueprint ${row.blueprintId} has ${row.n} undestroyed resources`),
  ];
}

/** What must hold once everything settled: no lock held by a dead object, no job stuck or orphaned. */
export async function settledViolations(db: Database, deadWorkers: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const locks = await db.prisma.slotLock.findMany({ include: { ownerLease: true, ownerResource: true } });
  for (const lock of locks) {
    const live =
      (lock.ownerLease && ['ACQUIRED', 'ACTIVE'].includes(lock.ownerLease.status)) ||
      (lock.ownerResource && ['PENDING', 'ACTIVE'].includes(lock.ownerResource.status));
    if (!live)
      problems.push(
        `slot lock ${lock.key} is held by ${lock.ownerLease ? `lease ${lock.ownerLease.id} (${lock.ownerLease.status})` : `resource ${lock.ownerResource?.id} (${lock.ownerResource?.status})`}`,
      );
  }
  problems.push(...(await jobProblems(db, deadWorkers)));
  problems.push(...(await leaseCountProblems(db)));
  problems.push(...(await liveResourceCountProblems(db)));
  return problems;
}

/**
 * Resource."leaseCount", kept by the database's triggers, against a count of the leases on each
 * resource: the allocation view trusts it to find the least-loaded resources.
 */
export async function leaseCountProblems(db: Database): Promise<string[]> {
  const wrong = await db.prisma.$queryRaw<{ id: number; kept: number; live: number }[]>`
    SELECT r.id, r."leaseCount" AS kept, count(l.id)::int AS live
    FROM "Resource" r LEFT JOIN "Lease" l ON l."resourceId" = r.id AND l.status IN ('ACQUIRED', 'ACTIVE')
    GROUP BY r.id HAVING r."leaseCount" <> count(l.id) ORDER BY r.id`;
  return wrong.map((r) => `resource ${r.id} counts ${r.kept} live leases, ${r.live} are on it`);
}

/**
 * LiveResourceCount, kept by the database's triggers, against a count of each blueprint's live
 * resources: a host pool trusts it to say that every host is taken.
 */
export async function liveResourceCountProblems(db: Database): Promise<string[]> {
  const wrong = await db.prisma.$queryRaw<{ id: number; kept: number; live: number }[]>`
    SELECT b.id, coalesce(c.count, 0) AS kept, count(r.id)::int AS live
    FROM "Blueprint" b LEFT JOIN "LiveResourceCount" c ON c."blueprintId" = b.id
      LEFT JOIN "Resource" r ON r."blueprintId" = b.id AND r.status <> 'DESTROYED'
    GROUP BY b.id, c.count HAVING coalesce(c.count, 0) <> count(r.id) ORDER BY b.id`;
  return wrong.map((b) => `blueprint ${b.id} counts ${b.kept} live resources, ${b.live} are live`);
}

/** Jobs claimed by a killed worker, or due for a while and not running. */
export async function jobProblems(db: Database, deadWorkers: readonly string[]): Promise<string[]> {
  const jobs = await db.prisma.job.findMany();
  const overdue = new Date(Date.now() - 5_000);
  const problems: string[] = [];
  for (const job of jobs) {
    const owner = job.lockedBy?.split(':')[0];
    if (owner && deadWorkers.includes(owner))
      problems.push(`job ${job.key} is still claimed by killed ${job.lockedBy}`);
    else if (job.runAt < overdue && (!job.lockedBy || (job.lockedUntil && job.lockedUntil < overdue)))
      problems.push(`job ${job.key} is overdue since ${job.runAt.toISOString()} (attempts ${job.attempts})`);
  }
  return problems;
}
