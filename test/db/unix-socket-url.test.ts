import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { hostPoolConfig } from '../support/allocator-harness.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';

// libpq's URL for a Unix socket leaves the host empty and names the socket's directory in `?host=`
// (postgresql://user@/db?host=/run/postgresql). The WHATWG URL parser refuses it, and the server
// died at start-up on it ("Invalid URL", reading the URL's ?schema= for the job queue's pool).

describePostgres('DATABASE_URL in libpq’s Unix-socket form', () => {
  let testDb: TestDatabase;
  let app: App | undefined;
  const lines: string[] = [];
  let socketUrl: string;
  beforeAll(async () => {
    testDb = await createTestDatabase('postgresql', { poolSize: 1 });
    const [row] = await testDb.prisma.$queryRaw<
      { dirs: string }[]
    >`SELECT current_setting('unix_socket_directories') AS dirs`;
    const dir = row!.dirs.split(',')[0]!.trim();
    // This machine's PostgreSQL listens on a socket (the README's set-up); a server without one cannot run this test.
    expect(dir, 'PostgreSQL has no unix_socket_directories').not.toBe('');
    const tcp = new URL(testDb.url!);
    socketUrl = `postgresql://${tcp.username}@${tcp.pathname}?host=${dir}`;
  });
  afterAll(async () => {
    await app?.close();
    await testDb.dispose();
  });

  it('starts, names the database as written, connects through the socket and grants a lease', async () => {
    app = await startApp(
      {
        ...loadConfig({ DATABASE_URL: socketUrl }),
        port: 0,
        workerConcurrency: 1,
        databaseUpkeep: false,
        warmUpLeases: 0,
        shutdownTimeoutMs: 2_000,
      },
      createLogger('info', (line) => lines.push(line)),
    );
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain(`database: PostgreSQL at ${socketUrl}`);
    const created = await graphqlRequest(
      app.graphqlUrl,
      `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { __typename } }`,
      { input: { name: 'hosts', implementation: 'host-pool', config: hostPoolConfig(1) } },
    );
    expect(created.body.errors).toBeUndefined();
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      app.graphqlUrl,
      `mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }`,
    );
    const id = requested.body.data!.requestLease.leases[0]!.id;
    const status = async () =>
      (
        await graphqlRequest<{ node: { status: string } }>(
          app!.graphqlUrl,
          `query ($id: ID!) { node(id: $id) { ... on Lease { status } } }`,
          { id },
        )
      ).body.data?.node.status;
    await expect.poll(status, { timeout: 30_000 }).toBe('ACTIVE');
    // Every session of the server's on this database came through the socket: no client address.
    const [sessions] = await testDb.prisma.$queryRaw<{ socket: number; tcp: number }[]>`
      SELECT count(*) FILTER (WHERE client_addr IS NULL)::int AS socket, count(*) FILTER (WHERE client_addr IS NOT NULL)::int AS tcp
      FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
    expect(sessions).toMatchObject({ tcp: 0 });
    expect(sessions!.socket).toBeGreaterThanOrEqual(2);
  });
});
