import { randomBytes } from 'node:crypto';
import { describe } from 'vitest';
import { openDatabase, type Database, type DatabaseKind } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';

/** PostgreSQL for the tests; CI always sets it. Without it the PostgreSQL half of the suite is skipped. */
export const testPostgresUrl = process.env['TEST_DATABASE_URL'];

export interface TestDatabase extends Database {
  /** Closes the connections and throws the data away. */
  dispose(): Promise<void>;
}

/** A freshly migrated database of its own: a new schema on PostgreSQL, an in-memory PGlite otherwise. */
export async function createTestDatabase(
  kind: DatabaseKind,
  options: { poolSize?: number } = {},
): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const db = await openDatabase({ dataDir: 'memory://' });
    await applyMigrations(db);
    return { ...db, dispose: () => db.close() };
  }
  if (!testPostgresUrl) throw new Error('TEST_DATABASE_URL is not set');
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const admin = await openDatabase({ url: testPostgresUrl, dataDir: '', poolSize: 1 });
  await admin.withConnection((query) => query(`CREATE SCHEMA "${schema}"`));
  const db = await openDatabase({ url: testPostgresUrl, dataDir: '', schema, poolSize: options.poolSize ?? 10 });
  await applyMigrations(db);
  return {
    ...db,
    async dispose() {
      await db.close();
      await admin.withConnection((query) => query(`DROP SCHEMA "${schema}" CASCADE`));
      await admin.close();
    },
  };
}

/** Connection settings for a child process that should use the same isolated database. */
export function schemaOf(db: Database): string | undefined {
  return /\(schema (\S+)\)$/.exec(db.location)?.[1];
}

/**
 * Runs the same tests on PGlite and on PostgreSQL. The PostgreSQL half is reported as skipped,
 * not failed, when TEST_DATABASE_URL is not set.
 */
export function describeEachDatabase(name: string, body: (kind: DatabaseKind) => void): void {
  describe(`${name} [pglite]`, () => body('pglite'));
  const label = testPostgresUrl ? `${name} [postgresql]` : `${name} [postgresql: skipped, TEST_DATABASE_URL not set]`;
  describe.skipIf(!testPostgresUrl)(label, () => body('postgresql'));
}

/** For tests that only mean something on PostgreSQL (races, several processes). */
export const describePostgres = (name: string, body: () => void): void => {
  const label = testPostgresUrl ? `${name} [postgresql]` : `${name} [postgresql: skipped, TEST_DATABASE_URL not set]`;
  describe.skipIf(!testPostgresUrl)(label, body);
};
