import type { Database } from './database.js';

/**
 * PostgreSQL's `autovacuum` setting; null for PGlite, which runs no background workers. With it
 * off, nothing gathers statistics of the lease and resource tables as they grow: the planner goes
 * on using what it knew of them empty, and a large pool's grants take plans made for a few rows.
 */
export async function autovacuumSetting(db: Database): Promise<string | null> {
  if (db.kind !== 'postgresql') return null;
  const [row] = await db.prisma.$queryRaw<{ autovacuum: string }[]>`SHOW autovacuum`;
  return row?.autovacuum ?? null;
}

export const AUTOVACUUM_OFF_WARNING =
  'PostgreSQL runs with autovacuum off: the statistics of the lease and resource tables go stale as they grow, and grants slow down on a large pool; turn it on, or run VACUUM ANALYZE regularly (docs/operations.md)';
