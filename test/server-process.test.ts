import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { describePostgres, testPostgresUrl } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { runServerToExit, startServerProcess } from './support/process.js';

const leasesQuery = '{ leases { edges { node { id } } } }';

describe('the server process on embedded PGlite (no DATABASE_URL)', () => {
  let dataDir: string;
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it('starts, migrates, answers, shuts down cleanly on SIGTERM, and keeps its data', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'drydock-pglite-'));
    const first = await startServerProcess({ DATA_DIR: dataDir });
    expect(first.output()).toContain(`embedded PGlite at ${dataDir}`);
    expect(first.output()).toMatch(/migrations applied: \d+_init/);
    const { body } = await graphqlRequest(`${first.url}/graphql`, leasesQuery);
    expect(body).toEqual({ data: { leases: { edges: [] } } });
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.output()).toContain('stopped cleanly');

    const second = await startServerProcess({ DATA_DIR: dataDir });
    expect(second.output()).toContain('migrations: up to date');
    expect(await second.stop('SIGINT')).toBe(0);
    // Two starts on the WASM database: each may take most of a minute on a busy machine.
  }, 150_000);
});

describePostgres('the server process on PostgreSQL (DATABASE_URL)', () => {
  const schema = `test_proc_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: testPostgresUrl });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('starts, records the migrations in _prisma_migrations, answers and shuts down cleanly', async () => {
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const url = new URL(testPostgresUrl!);
    url.searchParams.set('schema', schema);
    const server = await startServerProcess({ DATABASE_URL: url.toString() });
    expect(server.output()).toContain('database: PostgreSQL');
    const { body } = await graphqlRequest(`${server.url}/graphql`, leasesQuery);
    expect(body).toEqual({ data: { leases: { edges: [] } } });
    const { rows } = await admin.query(
      `SELECT migration_name FROM "${schema}"._prisma_migrations WHERE finished_at IS NOT NULL ORDER BY migration_name`,
    );
    const committed = (await readdir('prisma/migrations', { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(rows.map((row: { migration_name: string }) => row.migration_name)).toEqual(committed);
    expect(await server.stop('SIGTERM')).toBe(0);
  }, 90_000);
});

describe('configuration', () => {
  it('refuses to start with a clear message for each bad variable', async () => {
    const { code, output } = await runServerToExit({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://localhost/x',
      LOG_LEVEL: 'loud',
    });
    expect(code).toBe(2);
    expect(output).toContain('PORT must be a whole number (got "eighty")');
    expect(output).toContain('DATABASE_URL must be a postgresql:// or postgres:// URL');
    expect(output).toContain('LOG_LEVEL must be one of debug, info, warn, error (got "loud")');
  });
});
