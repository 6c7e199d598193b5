import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { sample, scrape } from '../support/prometheus.js';
import { collect, wsClient } from '../support/ws.js';

const quiet = createLogger('error', () => {});

const requestLease = `mutation { requestLease(input: { resourceType: "host" }) {
  ... on RequestLeasePayload { leases { id } } ... on Error { message } } }`;
const leaseStatus = `query ($id: ID!) { node(id: $id) { ... on Lease { status } } }`;

describeEachDatabase('/metrics after a lease cycle', (kind) => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    // No worker at first, so that the queue's due job can be seen before anything takes it.
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 }, quiet);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  const request = async () => {
    const { body } = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(app.graphqlUrl, requestLease);
    return body.data!.requestLease.leases[0]!.id;
  };
  const status = async (id: string) =>
    (await graphqlRequest<{ node: { status: string } }>(app.graphqlUrl, leaseStatus, { id })).body.data?.node.status;

  it('counts leases by status and type, the waiting line, grants, due jobs, operations and subscriptions', async () => {
    const created = await graphqlRequest(
      app.graphqlUrl,
      `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { __typename } }`,
      {
        input: {
          name: 'one-host',
          implementation: 'host-pool',
          config: { services: [{ name: 'build', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }] },
        },
      },
    );
    expect(created.body.errors).toBeUndefined();

    const first = await request();
    let text = await scrape(app.url);
    expect(sample(text, 'drydock_leases', { status: 'PENDING', resource_type: 'host' })).toBe(1);
    expect(sample(text, 'drydock_leases_waiting', { resource_type: 'host' })).toBe(1);
    expect(sample(text, 'drydock_lease_oldest_wait_seconds', { resource_type: 'host' })).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'drydock_jobs_due')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'drydock_jobs_running')).toBe(0);
    expect(sample(text, 'drydock_lease_grant_seconds_count', { resource_type: 'host' })).toBeUndefined();
    expect(sample(text, 'drydock_scheduling_pass_seconds_count', { resource_type: 'host' })).toBeUndefined();

    const client = wsClient(app.graphqlUrl);
    const watching = collect(client, { query: 'subscription Dashboard { leasesChanged { status } }' });
    await expect
      .poll(async () => sample(await scrape(app.url), 'drydock_subscriptions_open', { operation: 'Dashboard' }))
      .toBe(1);

    const worker = app.services.worker.start({ concurrency: 1 });
    try {
      await expect.poll(() => status(first), { timeout: 30_000 }).toBe('ACTIVE');
      text = await scrape(app.url);
      expect(sample(text, 'drydock_leases', { status: 'ACTIVE', resource_type: 'host' })).toBe(1);
      expect(sample(text, 'drydock_leases', { status: 'PENDING', resource_type: 'host' })).toBeUndefined();
      expect(sample(text, 'drydock_leases_waiting', { resource_type: 'host' })).toBeUndefined();
      expect(sample(text, 'drydock_lease_grant_seconds_count', { resource_type: 'host' })).toBe(1);
      // The pass that granted it: at least that one (a pass asked for again may run once more and find nothing).
      const passes = sample(text, 'drydock_scheduling_pass_seconds_count', { resource_type: 'host' }) ?? 0;
      expect(passes).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'drydock_scheduling_pass_grants_count', { resource_type: 'host' })).toBe(passes);
      expect(sample(text, 'drydock_scheduling_pass_grants_sum', { resource_type: 'host' })).toBe(1);
      expect(sample(text, 'drydock_scheduling_pass_seconds_sum', { resource_type: 'host' })).toBeGreaterThan(0);
      // A grant on a free pool takes milliseconds: the histogram's buckets must tell them apart.
      expect(sample(text, 'drydock_lease_grant_seconds_bucket', { resource_type: 'host', le: '0.005' })).toBeDefined();

      const second = await request();
      await expect.poll(() => status(second), { timeout: 30_000 }).toBe('ACTIVE');
      const released = await graphqlRequest(
        app.graphqlUrl,
        `mutation ($id: ID!) { releaseLease(id: $id) { __typename } }`,
        {
          id: first,
        },
      );
      expect(released.body.errors).toBeUndefined();
      await expect.poll(() => status(first), { timeout: 30_000 }).toBe('DESTROYED');
      await expect.poll(async () => sample(await scrape(app.url), 'drydock_jobs_running'), { timeout: 30_000 }).toBe(0);
      text = await scrape(app.url);
      expect(sample(text, 'drydock_leases', { status: 'ACTIVE', resource_type: 'host' })).toBe(1);
      expect(sample(text, 'drydock_leases', { status: 'DESTROYED', resource_type: 'host' })).toBe(1);
      expect(sample(text, 'drydock_leases', { status: 'PENDING', resource_type: 'host' })).toBeUndefined();
      expect(sample(text, 'drydock_leases_waiting', { resource_type: 'host' })).toBeUndefined();
      expect(sample(text, 'drydock_lease_grant_seconds_count', { resource_type: 'host' })).toBe(2);
      expect(sample(text, 'drydock_scheduling_pass_grants_sum', { resource_type: 'host' })).toBe(2);
      expect(sample(text, 'drydock_event_delivery_lag_seconds_count')).toBeGreaterThan(0);
      // Yoga's Prometheus plugin: the operations, by name and type.
      expect(
        sample(text, 'graphql_envelop_request', { operationName: '(anonymous)', operationType: 'mutation' }),
      ).toBeGreaterThanOrEqual(3);
    } finally {
      await worker.stop();
    }

    watching.stop();
    await client.dispose();
    await expect
      .poll(async () => sample(await scrape(app.url), 'drydock_subscriptions_open', { operation: 'Dashboard' }))
      .toBe(0);
  }, 90_000);
});
