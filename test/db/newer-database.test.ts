import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { applyMigrations, appliedMigrations } from '../../src/db/migrate.js';
import { migrationsDir, projectRoot } from '../../src/db/migrations-folder.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { entryArgs } from '../support/entry-args.js';
import { committedMigrations } from '../support/committed-migrations.js';

// What a newer build leaves behind: a row in _prisma_migrations for a migration this build does
// not have, recorded the way the schema engine records one.
const FUTURE = '20991231000000_from_a_newer_build';
async function recordMigration(db: Database, name: string, rolledBack = false): Promise<void> {
  await db.withConnection((query) =>
    query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, rolled_back_at, applied_steps_count)
       VALUES ($1, 'not-a-real-checksum', $2, now(), now(), ${rolledBack ? 'now()' : 'NULL'}, 1)`,
      [randomUUID(), name],
    ),
  );
}

const refusal = (names: string[]) =>
  `the database has migrations this build does not have (${names.join(', ')}): a newer build of Drydock applied them, so run that build, or restore the backup taken before the upgrade to run this one`;

async function tableExists(db: Database, table: string): Promise<boolean> {
  const [row] = (await db.withConnection((query) =>
    query('SELECT to_regclass($1) IS NOT NULL AS present', [table]),
  )) as { present: boolean }[];
  return row!.present;
}

describeEachDatabase('a database newer than this build', (kind) => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    dir = await mkdtemp(join(tmpdir(), 'drydock-newer-database-'));
  });
  afterAll(async () => {
    await db.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('an older build (its migrations folder without the latest one) is refused', async () => {
    const committed = await committedMigrations();
    const latest = committed.at(-1)!;
    const older = join(dir, 'older');
    await cp(migrationsDir, older, { recursive: true });
    await rm(join(older, latest), { recursive: true });
    await expect(applyMigrations(db, older)).rejects.toThrow(refusal([latest]));
  });

  it('is refused before any migration of this build is applied, naming every unknown one', async () => {
    // This build brings a migration the database has not seen, and the database has one this build
    // does not know: nothing of this build's may touch a schema it does not know.
    const mine = join(dir, 'mine');
    await cp(migrationsDir, mine, { recursive: true });
    await mkdir(join(mine, '20991230000000_this_build'));
    await writeFile(
      join(mine, '20991230000000_this_build', 'migration.sql'),
      'CREATE TABLE "ThisBuild" (id INTEGER);\n',
    );
    await recordMigration(db, FUTURE);
    await recordMigration(db, '20991231000001_another_newer_one');
    await expect(applyMigrations(db, mine)).rejects.toThrow(refusal([FUTURE, '20991231000001_another_newer_one']));
    expect(await tableExists(db, 'ThisBuild')).toBe(false);
    expect(await appliedMigrations(db)).not.toContain('20991230000000_this_build');
  });

  it('a newer migration marked rolled back (prisma migrate resolve --rolled-back) does not count', async () => {
    const own = await createTestDatabase(kind);
    try {
      await recordMigration(own, FUTURE, true);
      expect(await applyMigrations(own)).toEqual([]);
    } finally {
      await own.dispose();
    }
  });
});

describeEachDatabase('a running server whose database a newer build migrates', (kind) => {
  let db: TestDatabase;
  let app: App;
  const logged: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const logger = createLogger('error', (line) => logged.push((JSON.parse(line) as { msg: string }).msg));
    const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, schemaCheckIntervalMs: 50 };
    app = await serve(db, config, logger);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  const readiness = async () => {
    const response = await fetch(`${app.url}/readyz`);
    return { status: response.status, body: (await response.json()) as unknown };
  };

  it('notices it unprobed, is no longer ready, naming the migrations, and says so once', async () => {
    expect(await readiness()).toEqual({ status: 200, body: { status: 'ready', database: kind } });
    let noticed: string[] | undefined;
    void app.newerDatabase.then((unknown) => (noticed = unknown));
    // The newer build started: it migrated, and this process, started before, still runs.
    await recordMigration(db, FUTURE);
    // Its own look, with no probe: main.ts shuts the process down on it (the test below).
    await expect(app.newerDatabase).resolves.toEqual([FUTURE]);
    expect(noticed).toEqual([FUTURE]);
    expect(await readiness()).toEqual({
      status: 503,
      body: { status: 'database-newer', database: kind, unknown: [FUTURE] },
    });
    expect((await readiness()).status).toBe(503);
    expect(logged).toEqual([`${refusal([FUTURE])}; this process started before they were applied: shutting down`]);
    // One that failed halfway may have changed the schema all the same.
    await db.withConnection((query) =>
      query(`UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = $1`, [FUTURE]),
    );
    expect((await readiness()).status).toBe(503);
    // Rolled back (were this process not stopping already): ready again, and nothing more logged.
    await db.withConnection((query) =>
      query(`UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1`, [FUTURE]),
    );
    expect(await readiness()).toEqual({ status: 200, body: { status: 'ready', database: kind } });
    expect(logged).toHaveLength(1);
  }, 60_000);
});

describePostgres('a database newer than this build, in a schema of its own', () => {
  let db: TestDatabase;
  let inSchema: Database;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    await db.withConnection((query) => query('CREATE SCHEMA fresh'));
    inSchema = await openDatabase({ url: db.url!, dataDir: '', schema: 'fresh', poolSize: 2 });
  });
  afterAll(async () => {
    await inSchema.close();
    await db.dispose();
  });

  it('an empty schema is migrated, and a newer migration recorded in it refuses the next start', async () => {
    expect(await applyMigrations(inSchema)).toEqual(await committedMigrations());
    // The public schema's table is another database as far as this one is concerned.
    await recordMigration(db, FUTURE);
    expect(await applyMigrations(inSchema)).toEqual([]);
    await recordMigration(inSchema, FUTURE);
    await expect(applyMigrations(inSchema)).rejects.toThrow(refusal([FUTURE]));
  }, 120_000);
});

/**
 * Runs the server with `env` until it exits. Once it listens, `whenListening` runs (by default it
 * kills it: a server that went on to serve is the failure the start-up tests are about); one still
 * running 30 s later is killed, within the test's time, so that none is left behind.
 */
function startServer(
  env: Record<string, string>,
  whenListening: (child: ChildProcess) => void = (child) => child.kill('SIGKILL'),
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, entryArgs('src', 'main.ts'), {
    cwd: projectRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_FORMAT: 'json',
      WARM_UP_LEASES: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const listening = !output.includes('drydock listening on');
    output += chunk.toString();
    if (listening && output.includes('drydock listening on')) whenListening(child);
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const limit = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(limit);
      resolve({ code, output });
    }),
  );
}

const messages = (output: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);

function expectRefused({ code, output }: { code: number | null; output: string }): void {
  expect(code).toBe(1);
  expect(messages(output).filter((msg) => msg.startsWith('could not start'))).toEqual([
    `could not start: ${refusal([FUTURE])}`,
  ]);
  expect(output).not.toContain('listening');
  expect(output).not.toContain('migrations:');
}

describe('a server started on a database a newer build migrated [pglite]', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drydock-newer-database-'));
    const db = await openDatabase({ dataDir: join(dir, 'pglite') });
    try {
      await applyMigrations(db);
      await recordMigration(db, FUTURE);
    } finally {
      await db.close();
    }
  }, 120_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('stops at start with one line naming the migrations, exit code 1', async () => {
    expectRefused(await startServer({ DATA_DIR: join(dir, 'pglite') }));
  }, 60_000);

  it('npm run migrate refuses it the same way', async () => {
    const child = spawn(process.execPath, entryArgs('scripts', 'migrate.ts'), {
      cwd: projectRoot,
      env: { PATH: process.env['PATH'] ?? '', DATA_DIR: join(dir, 'pglite') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      `could not migrate embedded PGlite at ${join(dir, 'pglite')}: ${refusal([FUTURE])}`,
    ]);
  }, 60_000);
});

describePostgres('a server started on a database a newer build migrated', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    await recordMigration(db, FUTURE);
  });
  afterAll(() => db.dispose());

  it('stops at start with one line naming the migrations, exit code 1', async () => {
    expectRefused(await startServer({ DATABASE_URL: db.url! }));
  }, 60_000);
});

describePostgres('a server process whose database a newer build migrates', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
  });
  afterAll(() => db.dispose());

  it('shuts itself down cleanly, saying why, with exit code 1', async () => {
    const { code, output } = await startServer(
      { DATABASE_URL: db.url!, SCHEMA_CHECK_INTERVAL_MS: '100' },
      // The newer build migrates while this one serves.
      () => void recordMigration(db, FUTURE),
    );
    expect(output).toContain('drydock listening on');
    expect(code).toBe(1);
    const said = messages(output);
    const newer = said.indexOf(`${refusal([FUTURE])}; this process started before they were applied: shutting down`);
    expect(newer).toBeGreaterThanOrEqual(0);
    expect(said.slice(newer + 1).at(-1)).toBe('stopped cleanly');
  }, 60_000);
});
