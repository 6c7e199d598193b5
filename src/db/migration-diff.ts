import { readFile } from 'node:fs/promises';
import { openDatabase } from './database.js';
import { migrationsDir, readMigrationList, schemaPath } from './migrations-folder.js';
import { openSchemaEngine } from './schema-engine.js';

/**
 * The SQL that would take a database built from the migrations folder to schema.prisma; empty when
 * they agree. Runs on a throwaway in-memory PGlite (its shadow database replays the migrations), so
 * it needs no server.
 */
export async function diffMigrationsToSchema(options: { dir?: string; schemaFile?: string } = {}): Promise<string> {
  const schemaFile = options.schemaFile ?? schemaPath;
  const schemaText = await readFile(schemaFile, 'utf8');
  const migrationsList = await readMigrationList(options.dir ?? migrationsDir);
  const db = await openDatabase({ dataDir: 'memory://' });
  const engine = await openSchemaEngine(schemaFile, schemaText, db.adapterFactory);
  try {
    const result = await engine.diff({
      from:
        migrationsList.migrationDirectories.length === 0 ? { tag: 'empty' } : { tag: 'migrations', ...migrationsList },
      to: { tag: 'schemaDatamodel', files: [{ path: schemaFile, content: schemaText }] },
      script: true,
      exitCode: null,
      filters: { externalTables: [], externalEnums: [] },
    } as Parameters<typeof engine.diff>[0]);
    // `migrate dev` leaves the default schema to the database; so do we, so that a search_path
    // (how the tests isolate themselves) decides where the tables go.
    const script = (result.stdout ?? '').replace(/^-- CreateSchema\nCREATE SCHEMA IF NOT EXISTS "public";\n\n/m, '');
    return isEmptyMigration(script) ? '' : script;
  } finally {
    engine.free();
    await db.close();
  }
}

export function isEmptyMigration(script: string): boolean {
  return script
    .split('\n')
    .map((line) => line.trim())
    .every((line) => line === '' || line.startsWith('--'));
}
