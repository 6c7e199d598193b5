import { readFile } from 'node:fs/promises';
import type { Database } from './database.js';
import { migrationsDir, readMigrationList, schemaPath } from './migrations-folder.js';
import { openSchemaEngine } from './schema-engine.js';

const noFilters = { externalTables: [], externalEnums: [] };

// Any constant will do, as long as every process of this service uses the same one.
const MIGRATION_LOCK_ID = 7_263_514_001;

/**
 * The database has migrations this build does not have: a newer build migrated it. This build's
 * queries do not know that schema (a column it does not fill, a trigger it does not expect), so it
 * must not run on it at all.
 */
export class NewerDatabaseError extends Error {
  constructor(readonly migrations: string[]) {
    super(
      `the database has migrations this build does not have (${migrations.join(', ')}): a newer build of Drydock applied them, so run that build, or restore the backup taken before the upgrade to run this one`,
    );
    this.name = 'NewerDatabaseError';
  }
}

type Query = (sql: string, params?: unknown[]) => Promise<unknown[]>;

/**
 * Throws NewerDatabaseError when `_prisma_migrations` records migrations not in `known`. The
 * schema engine skips them without a word. A failed one counts (it may have changed the schema
 * halfway); one marked rolled back (`prisma migrate resolve --rolled-back`) does not.
 */
async function refuseNewerDatabase(query: Query, known: Set<string>): Promise<void> {
  // Unqualified, as the engine names it: search_path selects the schema of `?schema=`.
  const [table] = (await query("SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present")) as {
    present: boolean;
  }[];
  if (!table?.present) return;
  const rows = (await query(
    'SELECT DISTINCT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL ORDER BY migration_name',
  )) as { migration_name: string }[];
  const unknown = rows.map((row) => row.migration_name).filter((name) => !known.has(name));
  if (unknown.length > 0) throw new NewerDatabaseError(unknown);
}

/**
 * Applies the committed migrations that the database has not seen, recording them in
 * `_prisma_migrations` exactly as `prisma migrate deploy` does. Safe to run from several
 * processes at once: they queue on an advisory lock, and none holds a lock once this returns.
 * Refuses (NewerDatabaseError), before applying anything, a database that a newer build migrated.
 */
export async function applyMigrations(db: Database, dir: string = migrationsDir): Promise<string[]> {
  const schemaText = await readFile(schemaPath, 'utf8');
  const migrationsList = await readMigrationList(dir);
  const known = new Set(migrationsList.migrationDirectories.map((migration) => migration.path));
  const run = async (query: Query) => {
    await refuseNewerDatabase(query, known);
    const connection = await db.openMigrationAdapter();
    try {
      const engine = await openSchemaEngine(schemaPath, schemaText, connection.adapterFactory);
      try {
        const { appliedMigrationNames } = await engine.applyMigrations({ migrationsList, filters: noFilters });
        return appliedMigrationNames;
      } finally {
        engine.free();
      }
    } finally {
      // Closing the connection is what releases the engine's own advisory lock.
      await connection.close();
    }
  };
  if (db.kind === 'pglite') return db.withConnection(run);
  return db.withConnection(async (query) => {
    await query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      // Under the lock: a newer build that migrates meanwhile has finished by the time this looks.
      return await run(query);
    } finally {
      await query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  });
}

/** Names of committed migrations recorded as finished in the database. */
export async function appliedMigrations(db: Database): Promise<string[]> {
  return (await recordedMigrations(db)).filter((row) => row.finished).map((row) => row.name);
}

/**
 * Every migration the database records and that was not rolled back, finished or not: a failed
 * one of a newer build counts as newer (refuseNewerDatabase), as it may have changed the schema.
 */
export async function recordedMigrations(db: Database): Promise<{ name: string; finished: boolean }[]> {
  return db.prisma.$queryRawUnsafe<{ name: string; finished: boolean }[]>(
    'SELECT migration_name AS name, bool_or(finished_at IS NOT NULL) AS finished FROM _prisma_migrations WHERE rolled_back_at IS NULL GROUP BY migration_name ORDER BY migration_name',
  );
}
