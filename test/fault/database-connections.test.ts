// Terminate every database connection of the service under load: it recovers by itself.
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { collect, wsClient } from '../support/ws.js';

const quiet = createLogger('error', () => {});
const request =
  'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }';

describePostgres('database connections terminated under load', () => {
  let db: TestDatabase;
  let app: App;
  let admin: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, jobClaimTtlMs: 3_000 }, quiet);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await graphqlRequest(
      app.graphqlUrl,
      `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }, { name: "h2", address: "10.0.0.2", port: 22 }] }] } }) { __typename } }`,
    );
  });
  afterAll(async () => {
    await admin?.end();
    await app?.close();
    await db?.dispose();
  });

  it('keeps serving, finishes every lease, and keeps subscriptions alive, with no manual step', async () => {
    const dashboard = wsClient(app.graphqlUrl);
    const changes = collect<{ leasesChanged: { id: string; status: string } }>(dashboard, {
      query: 'subscription { leasesChanged { id status } }',
    });
    const ids: string[] = [];
    const load = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const { body } = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(app.graphqlUrl, request);
        const id = body.data?.requestLease?.leases?.[0]?.id;
        if (id) ids.push(id);
      }
    };
    const during = Promise.all([load(30), load(30)]);
    // Cut the connections once the load is being served, however slow the machine is.
    await vi.waitFor(() => expect(ids.length).toBeGreaterThan(0), { timeout: 30_000, interval: 10 });
    const killed = await admin.query(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    expect(killed.rows[0].n).toBeGreaterThan(0);
    await during;

    // Recovered: requests succeed again and /readyz says so, without anyone restarting anything.
    await vi.waitFor(async () => expect((await fetch(`${app.url}/readyz`)).status).toBe(200), {
      timeout: 30_000,
      interval: 100,
    });
    await load(10);
    expect(ids.length).toBeGreaterThanOrEqual(10);

    // Every lease that was created settles (the worker retries what the outage interrupted).
    const settled = async () =>
      (await db.prisma.lease.count({ where: { status: { in: ['PENDING', 'ACQUIRED'] } } })) === 0;
    await vi.waitFor(async () => expect(await settled()).toBe(true), { timeout: 60_000, interval: 100 });
    expect(await db.prisma.lease.count({ where: { status: 'ACTIVE' } })).toBe(await db.prisma.lease.count());

    // The event listener reconnected: a change after the outage still reaches the subscriber.
    const after = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(app.graphqlUrl, request);
    const last = after.body.data!.requestLease.leases[0]!.id;
    await vi
      .waitFor(() => expect(changes.items.some((c) => c.leasesChanged.id === last)).toBe(true), {
        timeout: 30_000,
        interval: 100,
      })
      .catch(() => undefined);
    changes.stop();
    expect(changes.items.some((c) => c.leasesChanged.id === last)).toBe(true);
    await dashboard.dispose();
  });
});
