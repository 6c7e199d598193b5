import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { describePostgres, testPostgresUrl } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { startServerProcess, type ServerProcess } from './support/process.js';

const leasesQuery = '{ leases(first: 5) { edges { node { id status } } } }';

/** Keeps `parallel` requests in flight against `url` until `stop`, which returns the statuses seen. */
function keepBusy(url: string, parallel: number) {
  let running = true;
  const statuses = new Map<number, number>();
  const loops = Array.from({ length: parallel }, async () => {
    while (running) {
      // A refused connection counts as status 0: the loop must outlive a failing server to report it.
      const status = await graphqlRequest(`${url}/graphql`, leasesQuery).then(
        (response) => response.status,
        () => 0,
      );
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  });
  return {
    answered: () => statuses.get(200) ?? 0,
    async stop() {
      running = false;
      await Promise.all(loops);
      return Object.fromEntries(statuses);
    },
  };
}

describePostgres('starting a server process while others serve load', () => {
  const schema = `test_start_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: testPostgresUrl });
  const servers: ServerProcess[] = [];
  const loads: ReturnType<typeof keepBusy>[] = [];
  afterAll(async () => {
    await Promise.all(loads.map((load) => load.stop()));
    await Promise.all(servers.map((server) => server.stop('SIGTERM')));
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('is ready within 10 s: no process keeps the migration lock after its own start-up', async () => {
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const url = new URL(testPostgresUrl!);
    url.searchParams.set('schema', schema);
    const env = { DATABASE_URL: url.toString(), RATE_LIMIT_PER_MINUTE: '1000000' };

    // The first process applies the migrations; the second starts while the first is busy.
    servers.push(await startServerProcess(env));
    const firstLoad = keepBusy(servers[0]!.url, 4);
    loads.push(firstLoad);
    servers.push(await startServerProcess(env));
    const secondLoad = keepBusy(servers[1]!.url, 4);
    loads.push(secondLoad);
    await expect.poll(() => firstLoad.answered() > 20 && secondLoad.answered() > 20, { timeout: 30_000 }).toBe(true);

    const third = await startServerProcess(env, 60_000);
    servers.push(third);
    // Before the fix, Prisma's engine waited 10 s for a lock an earlier process never let go, and
    // the process exited; timed from its first line, so loading its modules on a busy machine is not counted.
    expect(third.startUpMs).toBeLessThan(10_000);
    expect(third.output()).toContain('migrations: up to date');
    const { body } = await graphqlRequest(`${third.url}/graphql`, leasesQuery);
    expect(body.errors).toBeUndefined();
    for (const statuses of await Promise.all([firstLoad.stop(), secondLoad.stop()])) {
      expect(Object.keys(statuses)).toEqual(['200']);
    }
  }, 90_000);
});
