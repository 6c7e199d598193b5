import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describePostgres, testPostgresUrl, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { collect, wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});

const testRedisUrl = process.env['TEST_REDIS_URL'];

describePostgres('two servers on one PostgreSQL, events through NOTIFY', () => crossProcess(undefined));
// Redis is optional for the service; CI sets TEST_REDIS_URL, and without it this half says it is skipped.
describe.skipIf(!testPostgresUrl || !testRedisUrl)(
  `two servers on one PostgreSQL, events through Redis${testRedisUrl ? '' : ' [skipped: TEST_REDIS_URL not set]'}`,
  () => crossProcess(testRedisUrl),
);

function crossProcess(redisUrl: string | undefined) {
  let db: TestDatabase;
  let a: App;
  let b: App;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, redisUrl };
    // A serves the API only: whatever its subscribers see was caused and processed on B.
    a = await serve(db, { ...config, workerConcurrency: 0 }, quiet);
    b = await serve(db, config, quiet);
    await graphqlRequest(
      b.graphqlUrl,
      `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) { __typename } }`,
    );
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.dispose();
  });

  it('a subscriber on one sees, in order and complete, what a request on the other caused', async () => {
    const dashboard = wsClient(a.graphqlUrl);
    const changes = collect<{ leasesChanged: { id: string; status: string } }>(dashboard, {
      query: 'subscription { leasesChanged { id status } }',
    });
    // No wait for the dashboard to connect: what it must see (DESTROYED) comes after the release
    // below, long after it is connected; the lease's own streams replay from the start.
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      b.graphqlUrl,
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    const follower = wsClient(a.graphqlUrl);
    const events = collect<{ leaseEvents: { cursor: string; lease: { status: string } } }>(
      follower,
      {
        query: 'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor lease { status } } }',
        variables: { id: leaseId },
      },
      (items) => items.some((item) => item.leaseEvents.lease.status === 'ACTIVE'),
    );
    await events.done;
    const all = collect<{ leaseEvents: { cursor: string; lease: { status: string } } }>(follower, {
      query: 'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor lease { status } } }',
      variables: { id: leaseId },
    });
    await graphqlRequest(b.graphqlUrl, 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id: leaseId });
    const history = await all.done;
    expect(history.at(-1)?.leaseEvents.lease.status).toBe('DESTROYED');
    const cursors = history.map((item) => BigInt(item.leaseEvents.cursor));
    expect(cursors).toEqual([...cursors].sort((x, y) => (x < y ? -1 : 1)));
    expect(new Set(cursors).size).toBe(cursors.length);

    await vi
      .waitFor(() => expect(changes.items.some((c) => c.leasesChanged.status === 'DESTROYED')).toBe(true), {
        timeout: 30_000,
        interval: 50,
      })
      .catch(() => undefined);
    changes.stop();
    const seen = changes.items.filter((c) => c.leasesChanged.id === leaseId).map((c) => c.leasesChanged.status);
    expect(seen).toContain('DESTROYED');
    await dashboard.dispose();
    await follower.dispose();
  });

  it('work requested on a server without a worker is taken up at once by a worker elsewhere', async () => {
    // The safety sweep runs every 10 s; only a pushed wake-up gets this done in well under that.
    const started = Date.now();
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      a.graphqlUrl,
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    let status = '';
    while (status !== 'ACTIVE' && Date.now() - started < 8_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const { body } = await graphqlRequest<{ lease: { status: string } }>(
        a.graphqlUrl,
        'query ($id: ID!) { lease(id: $id) { status } }',
        { id: leaseId },
      );
      status = body.data!.lease.status;
    }
    expect(status).toBe('ACTIVE');
    expect(Date.now() - started).toBeLessThan(5_000);
  });
}
