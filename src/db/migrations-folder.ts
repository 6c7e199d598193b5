import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { MigrationList } from '@prisma/schema-engine-wasm/schema_engine_bg';

export const projectRoot = resolve(import.meta.dirname, '..', '..');
export const schemaPath = join(projectRoot, 'prisma', 'schema.prisma');
export const migrationsDir = join(projectRoot, 'prisma', 'migrations');

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Reads a migrations folder in the shape the schema engine expects (what Prisma's CLI sends it). */
export async function readMigrationList(dir: string = migrationsDir): Promise<MigrationList> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const migrationDirectories = await Promise.all(
    names.map(async (name) => {
      const content = await readOrNull(join(dir, name, 'migration.sql'));
      return {
        path: name,
        migrationFile: {
          path: 'migration.sql',
          content:
            content === null ? { tag: 'error', value: 'migration.sql is missing' } : { tag: 'ok', value: content },
        },
      };
    }),
  );
  return {
    baseDir: dir,
    lockfile: { path: 'migration_lock.toml', content: await readOrNull(join(dir, 'migration_lock.toml')) },
    shadowDbInitScript: '',
    migrationDirectories,
  } as MigrationList;
}
