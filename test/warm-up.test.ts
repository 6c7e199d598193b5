import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { serve, startApp, type App } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { EVENTS_CHANNEL } from '../src/events/postgres-event-target.js';
import { createLogger } from '../src/logger.js';
import { SCRATCH_SCHEMA_PREFIX } from '../src/warm-up/scratch-schema.js';
import { warmUp } from '../src/warm-up/warm-up.js';
import { createTestDatabase, describePostgres, type TestDatabase } from './support/database.js';

// A process on PostgreSQL serves lease cycles to itself before it listens, on tables of a scratch
// schema: the service's own tables, its subscribers and its other processes never see them.

const SCRATCH_LOCKS = 0x44525755;

describePostgres('the warm-up before a process listens', () => {
  let testDb: TestDatabase;
  let admin: pg.Client;
  let app: App | undefined;
  let lines: { level: string; msg: string }[];

  beforeEach(async () => {
    testDb = await createTestDatabase('postgresql', { poolSize: 2 });
    admin = new pg.Client({ connectionString: testDb.url });
    await admin.connect();
    lines = [];
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await admin.end();
    await testDb.dispose();
  });

  const config = (overrides: Partial<Config> = {}): Config => ({
    ...loadConfig({}),
    databaseUrl: testDb.url,
    port: 0,
    workerConcurrency: 1,
    databaseUpkeep: false,
    shutdownTimeoutMs: 2_000,
    warmUpLeases: 30,
    ...overrides,
  });
  const start = async (overrides: Partial<Config> = {}) => {
    app = await startApp(
      config(overrides),
      createLogger('info', (line) => lines.push(JSON.parse(line) as { level: string; msg: string })),
    );
    return app;
  };
  const scratchSchemas = async () =>
    (
      await admin.query<{ name: string }>('SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)', [
        SCRATCH_SCHEMA_PREFIX,
      ])
    ).rows.map((row) => row.name);
  const warmUpLines = () => lines.filter((line) => /^warm-up/.test(line.msg));

  it('runs its lease cycles and leaves nothing in the service: no row, no schema, no event', async () => {
    const heard: string[] = [];
    const listener = new pg.Client({ connectionString: testDb.url });
    await listener.connect();
    listener.on('notification', (message) => heard.push(message.payload ?? ''));
    await listener.query(`LISTEN ${EVENTS_CHANNEL}`);
    try {
      const { url } = await start();
      // Its cycles completing is what this line says: the scratch instance's job bookkeeping must
      // work in the schema it was opened with (it once went to the URL's schema and hung there).
      expect(warmUpLines()).toEqual([
        expect.objectContaining({
          level: 'info',
          msg: expect.stringMatching(/^warm-up: 30 lease cycles through the API in \d+ ms/),
        }),
      ]);
      expect(await scratchSchemas()).toEqual([]);
      const count = async (table: string) =>
        Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`)).rows[0]!.n);
      for (const table of ['Lease', 'Resource', 'Blueprint', 'Principal', 'ApiToken', 'Log', 'Job', 'Command'])
        expect(await count(table), table).toBe(0);
      // The scratch instance notified on its own schema's channel only.
      await listener.query('SELECT 1');
      expect(heard).toEqual([]);
      // The service it then started is the operator's: anonymous local requests as configured.
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ leases(first: 5) { edges { node { id } } } }' }),
      });
      expect(await response.json()).toEqual({ data: { leases: { edges: [] } } });
    } finally {
      await listener.end();
    }
  });

  it('drops a scratch schema a killed process left, and not one a live process holds', async () => {
    const abandoned = `${SCRATCH_SCHEMA_PREFIX}abandoned${randomBytes(3).toString('hex')}`;
    const held = `${SCRATCH_SCHEMA_PREFIX}held${randomBytes(3).toString('hex')}`;
    await admin.query(`CREATE SCHEMA "${abandoned}"`);
    await admin.query(`CREATE TABLE "${abandoned}".t (id int)`);
    await admin.query(`CREATE SCHEMA "${held}"`);
    const holder = new pg.Client({ connectionString: testDb.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::int, hashtext($2))', [SCRATCH_LOCKS, held]);
      await start({ warmUpLeases: 5 });
      expect(warmUpLines()[0]?.level).toBe('info');
      expect(await scratchSchemas()).toEqual([held]);
    } finally {
      await holder.end();
      await admin.query(`DROP SCHEMA IF EXISTS "${held}"`);
    }
  });

  it('is skipped with a warning that says why when the database user may not create a schema', async () => {
    const role = `drydock_no_create_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    try {
      await admin.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      await admin.query(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
      await admin.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
      const url = new URL(testDb.url!);
      url.username = role;
      url.password = '';
      const { url: served } = await start({ databaseUrl: url.toString() });
      expect(warmUpLines()).toEqual([
        expect.objectContaining({
          level: 'warn',
          msg: expect.stringMatching(
            /^warm-up failed, so this process serves its first requests cold: permission denied for database .*: the warm-up needs CREATE on the database for a scratch schema \(or WARM_UP_LEASES=0 to turn it off\)$/,
          ),
        }),
      ]);
      expect((await fetch(`${served}/readyz`)).status).toBe(200);
      expect(await scratchSchemas()).toEqual([]);
    } finally {
      await app?.close();
      app = undefined;
      await admin.query(`DROP OWNED BY ${role}`);
      await admin.query(`DROP ROLE ${role}`);
    }
  });

  it('starts no cycle once its time is up, and says how many it ran: a loaded machine does fewer', async () => {
    const logger = createLogger('info', (line) => lines.push(JSON.parse(line) as { level: string; msg: string }));
    // The budget ends before the first cycle could start after the probe: none runs.
    await warmUp(testDb, config({ warmUpLeases: 1000 }), logger, serve, 0);
    expect(warmUpLines()).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: expect.stringMatching(/^warm-up: 0 lease cycles \(of 1000: its 0 ms were up\) through the API in \d+ ms/),
      }),
    ]);
    expect(await scratchSchemas()).toEqual([]);
  });

  it('is not run with WARM_UP_LEASES=0', async () => {
    await start({ warmUpLeases: 0 });
    expect(warmUpLines()).toEqual([]);
  });
});
