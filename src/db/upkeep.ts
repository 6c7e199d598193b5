import type { Database } from './database.js';

/**
 * PostgreSQL's `autovacuum` setting; null for PGlite, which runs no background workers. With it
 * off, nothing gathers statistics of the lease and resource tables' columns (the planner guesses
 * how many rows each condition keeps, and on a large pool guesses wrong) nor clears their dead
 * row versions, which every index scan then steps over.
 */
export async function autovacuumSetting(db: Database): Promise<string | null> {
  if (db.kind !== 'postgresql') return null;
  const [row] = await db.prisma.$queryRaw<{ autovacuum: string }[]>`SHOW autovacuum`;
  return row?.autovacuum ?? null;
}

export const AUTOVACUUM_OFF_WARNING =
  'PostgreSQL runs with autovacuum off: the statistics of the lease and resource tables go stale as they grow, and grants slow down on a large pool; turn it on, or run VACUUM ANALYZE regularly (docs/operations.md)';
