import { readFile } from 'node:fs/promises';
import type { Database } from './database.js';
import { migrationsDir, readMigrationList, schemaPath } from './migrations-folder.js';
import { openSchemaEngine } from './schema-engine.js';

const noFilters = { externalTables: [], externalEnums: [] };

// Any constant will do, as long as every process of this service uses the same one.
const MIGRATION_LOCK_ID = 7_263_514_001;

/**
 * Applies the committed migrations that the database has not seen, recording them in
 * `_prisma_migrations` exactly as `prisma migrate deploy` does. Safe to run from several
 * processes at once: they queue on an advisory lock, and none holds a lock once this returns.
 */
export async function applyMigrations(db: Database, dir: string = migrationsDir): Promise<string[]> {
  const schemaText = await readFile(schemaPath, 'utf8');
  const migrationsList = await readMigrationList(dir);
  const run = async () => {
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
  if (db.kind === 'pglite') return run();
  return db.withConnection(async (query) => {
    await query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      return await run();
    } finally {
      await query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  });
}

/** Names of committed migrations recorded as finished in the database. */
export async function appliedMigrations(db: Database): Promise<string[]> {
  const rows = await db.prisma.$queryRawUnsafe<{ migration_name: string }[]>(
    'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name',
  );
  return rows.map((row) => row.migration_name);
}
