import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';
import { openDatabase, type Database, type DatabaseKind } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { migrationsDir, projectRoot, readMigrationList } from '../../src/db/migrations-folder.js';

/** PostgreSQL for the tests; CI always sets it. Without it the PostgreSQL half of the suite is skipped. */
export const testPostgresUrl = process.env['TEST_DATABASE_URL'];

export interface TestDatabase extends Database {
  /** Closes the connections and throws the data away. */
  dispose(): Promise<void>;
}

// One template per set of committed migrations: checkouts of different branches test side by side
// on one server without rebuilding each other's template.
const templateName = async () =>
  `drydock_test_template_${createHash('sha256')
    .update((await committedChecksums()).join('\n'))
    .digest('hex')
    .slice(0, 12)}`;
// Any constant; every test process serialises template work on it.
const TEMPLATE_LOCK = 7_263_514_002;

function withDatabaseName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** sha256 of each committed migration.sql, as `_prisma_migrations.checksum` records them. */
async function committedChecksums(): Promise<string[]> {
  const list = await readMigrationList();
  return Promise.all(
    list.migrationDirectories.map(async (dir) => {
      const sql = await readFile(join(migrationsDir, dir.path, 'migration.sql'));
      return `${dir.path}:${createHash('sha256').update(sql).digest('hex')}`;
    }),
  );
}

async function templateIsCurrent(admin: pg.Client, url: string, templateDb: string): Promise<boolean> {
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [templateDb]);
  if (exists.rowCount === 0) return false;
  const client = new pg.Client({ connectionString: withDatabaseName(url, templateDb) });
  await client.connect();
  try {
    const { rows } = await client.query<{ entry: string }>(
      `SELECT migration_name || ':' || checksum AS entry FROM _prisma_migrations
       WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`,
    );
    return JSON.stringify(rows.map((row) => row.entry)) === JSON.stringify(await committedChecksums());
  } catch {
    return false;
  } finally {
    await client.end();
  }
}

/**
 * Creates a PostgreSQL database for one test as a copy of a template that the committed
 * migrations were applied to (by the real applyMigrations) once: copying is fast and needs no
 * schema engine per test, so a busy machine cannot time a test out while it sets up.
 */
async function createPostgresDatabase(url: string): Promise<string> {
  const name = `drydock_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK]);
    const templateDb = await templateName();
    if (!(await templateIsCurrent(admin, url, templateDb))) {
      await admin.query(`DROP DATABASE IF EXISTS "${templateDb}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${templateDb}"`);
      const template = await openDatabase({ url: withDatabaseName(url, templateDb), dataDir: '', poolSize: 2 });
      try {
        await applyMigrations(template);
      } finally {
        await template.close();
      }
    }
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${templateDb}"`);
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK]).catch(() => {});
    await admin.end();
  }
  return withDatabaseName(url, name);
}

/**
 * The PGlite counterpart of the PostgreSQL template: a copy of an in-memory database that the
 * committed migrations were applied to (by the real applyMigrations), kept in the OS's temporary
 * directory under a name that changes with the migrations and the PGlite version, so that every
 * test process of a run (and the next run) starts its databases from it. Opening an empty PGlite
 * database runs initdb, which takes seconds; loading the copy takes a fraction of that.
 */
async function pgliteTemplate(): Promise<Blob> {
  const { version } = JSON.parse(
    await readFile(join(projectRoot, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8'),
  ) as { version: string };
  const file = join(tmpdir(), `${await templateName()}_pglite_${version}.tar`);
  try {
    return new Blob([await readFile(file)]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const db = await openDatabase({ dataDir: 'memory://' });
  let dump: Blob;
  try {
    await applyMigrations(db);
    dump = await db.embedded!.dumpDataDir('none');
  } finally {
    await db.close();
  }
  // Written whole under another name first: a process reading it meanwhile finds it or nothing.
  const part = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(part, Buffer.from(await dump.arrayBuffer()));
  await rename(part, file);
  await removeStaleCopies(file);
  return dump;
}

/** Copies are 40 MB each: one a day old of other migrations or PGlite is of no checkout in use. */
const STALE_COPY_MS = 24 * 60 * 60 * 1_000;

/**
 * Removes the copies other migrations or another PGlite left in the temporary directory (and
 * parts of one a killed test process did not finish) once they are a day old: a checkout testing
 * other migrations beside this one keeps its own copy. A copy removed while another process was
 * about to read it is made again there.
 */
async function removeStaleCopies(kept: string): Promise<void> {
  const before = Date.now() - STALE_COPY_MS;
  for (const name of await readdir(tmpdir())) {
    const path = join(tmpdir(), name);
    if (!/^drydock_test_template_[0-9a-f]+_pglite_.+\.tar/.test(name) || path === kept) continue;
    try {
      if ((await stat(path)).mtimeMs < before) await unlink(path);
    } catch (error) {
      // Removed meanwhile by another test process.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

async function dropPostgresDatabase(url: string, testUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${new URL(testUrl).pathname.slice(1)}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** A freshly migrated database of its own: a new database on PostgreSQL, an in-memory PGlite otherwise. */
export async function createTestDatabase(
  kind: DatabaseKind,
  options: { poolSize?: number } = {},
): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const db = await openDatabase({ dataDir: 'memory://', initialData: await pgliteTemplate() });
    return { ...db, dispose: () => db.close() };
  }
  if (!testPostgresUrl) throw new Error('TEST_DATABASE_URL is not set');
  const url = await createPostgresDatabase(testPostgresUrl);
  const db = await openDatabase({ url, dataDir: '', poolSize: options.poolSize ?? 10 });
  return {
    ...db,
    async dispose() {
      await db.close();
      await dropPostgresDatabase(testPostgresUrl, url);
    },
  };
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
