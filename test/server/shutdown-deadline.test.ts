import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

// A resolver waiting on a row lock another client holds keeps running after shutdown has closed
// its connection, and the database's close waits for it: without a deadline the process never
// exits, and its supervisor has to kill it.

const SHUTDOWN_TIMEOUT_MS = 1_000;
/** main.ts's deadline: the timeout, and the grace it gives the queue and the database after it. */
const DEADLINE_MS = SHUTDOWN_TIMEOUT_MS + 5_000;
/** For a process on a busy machine to get the signal, and to exit. */
const SLACK_MS = 4_000;

describePostgres('SIGTERM with a request stuck on a row lock', () => {
  let db: TestDatabase;
  let server: ServerProcess | undefined;
  let holder: pg.Client | undefined;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
  });
  afterAll(async () => {
    await holder?.query('ROLLBACK').catch(() => {});
    await holder?.end().catch(() => {});
    if (server?.child.exitCode === null && server.child.signalCode === null) await server.stop('SIGKILL');
    await db?.dispose();
  });

  it('exits with code 1 and says what was still running, by the timeout plus a bounded grace', async () => {
    server = await startServerProcess({
      DATABASE_URL: db.url!,
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      LOG_FORMAT: 'json',
    });
    const graphqlUrl = `${server.url}/graphql`;
    const created = await graphqlRequest(
      graphqlUrl,
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) { __typename } }`,
      { config: { services: [{ name: 's', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }] } },
    );
    expect(created.body.errors).toBeUndefined();
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      graphqlUrl,
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    // The queue's own work on the lease is done, so that only the request below waits on the lock.
    await waitFor(async () => {
      const { body } = await graphqlRequest<{ node: { status: string } }>(
        graphqlUrl,
        'query ($id: ID!) { node(id: $id) { ... on Lease { status } } }',
        { id: leaseId },
      );
      return body.data?.node.status === 'ACTIVE';
    }, 30_000);

    // Another client holds the lease's row, as one in the middle of a long transaction would.
    const locker = (holder = new pg.Client({ connectionString: db.url! }));
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM "Lease" FOR UPDATE');
    const release = fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }',
        variables: { id: leaseId },
      }),
    }).catch(() => 'connection closed');
    const database = new URL(db.url!).pathname.slice(1);
    // The request is admitted and waiting on the lock: shutdown will find it in flight.
    await waitFor(async () => {
      const { rows } = await locker.query(
        "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
        [database],
      );
      return rows.length > 0;
    });

    const stoppedAt = performance.now();
    let bound: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      server.stop('SIGTERM'),
      new Promise((resolve) => (bound = setTimeout(() => resolve('still running'), DEADLINE_MS + SLACK_MS))),
    ]);
    clearTimeout(bound);
    const tookMs = performance.now() - stoppedAt;
    expect(code, server.output()).toBe(1);
    expect(tookMs).toBeLessThan(DEADLINE_MS + SLACK_MS);
    // The request had its SHUTDOWN_TIMEOUT_MS, as any in flight has.
    expect(tookMs).toBeGreaterThanOrEqual(SHUTDOWN_TIMEOUT_MS);
    const messages = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: string; msg: string });
    const warning = messages.find((line) => line.msg.startsWith('shutdown:'));
    expect(warning).toEqual({
      level: 'warn',
      msg: expect.stringMatching(
        new RegExp(`^shutdown: still waiting for .*requests.* after ${DEADLINE_MS} ms; exiting$`),
      ),
      time: expect.any(String),
      pid: expect.any(Number),
    });
    expect(messages.map((line) => line.msg)).not.toContain('stopped cleanly');
    await release;
  }, 120_000);
});
