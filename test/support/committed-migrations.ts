import { readdir } from 'node:fs/promises';
import { migrationsDir } from '../../src/db/migrations-folder.js';

/** The names of the migrations committed to the repository, in the order they apply. */
export async function committedMigrations(): Promise<string[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}
