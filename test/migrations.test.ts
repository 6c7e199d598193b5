import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyMigrations, appliedMigrations } from '../src/db/migrate.js';
import { diffMigrationsToSchema } from '../src/db/migration-diff.js';
import { migrationsDir, schemaPath } from '../src/db/migrations-folder.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { committedMigrations } from './support/committed-migrations.js';

describeEachDatabase('migrations', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
  });
  afterAll(() => db.dispose());

  it('records every committed migration in _prisma_migrations', async () => {
    const committed = await committedMigrations();
    expect(committed.length).toBeGreaterThan(0);
    expect(await appliedMigrations(db)).toEqual(committed);
  });

  it('applies a second time without change', async () => {
    expect(await applyMigrations(db)).toEqual([]);
    expect(await appliedMigrations(db)).toEqual(await committedMigrations());
  });
});

it('the committed migrations match schema.prisma', async () => {
  expect(await diffMigrationsToSchema()).toBe('');
});

it('the drift check notices a schema change that no migration records', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'drydock-drift-'));
  await cp(migrationsDir, join(dir, 'migrations'), { recursive: true });
  const drifted = (await readFile(schemaPath, 'utf8')).replace(
    'model Blueprint {',
    'model Blueprint {\n  driftedColumn String?',
  );
  await writeFile(join(dir, 'schema.prisma'), drifted);
  const script = await diffMigrationsToSchema({ dir: join(dir, 'migrations'), schemaFile: join(dir, 'schema.prisma') });
  expect(script).toContain('driftedColumn');
});
