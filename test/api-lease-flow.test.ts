import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { sseSubscription } from './support/sse.js';
import { collect, wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});

type LeaseEvent = { leaseEvents: { cursor: string; log: { type: string }; lease: { status: string } } };

describeEachDatabase('a lease through the API', (kind) => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('goes PENDING → ACTIVE → RELEASED → DESTROYED, seen live over graphql-ws, and replays from a cursor', async () => {
    const created = await graphqlRequest<{ createBlueprint: { blueprint?: { id: string }; message?: string } }>(
      app.graphqlUrl,
      `mutation ($input: CreateBlueprintInput!) {
        createBlueprint(input: $input) { __typename ... on BlueprintPayload { blueprint { id } } ... on Error { message } }
      }`,
      {
        input: {
          name: 'hosts',
          implementation: 'host-pool',
          config: { services: [{ name: 'build', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }] },
        },
      },
    );
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data?.createBlueprint.blueprint?.id).toBeTruthy();

    const requested = await graphqlRequest<{ requestLease: { leases?: { id: string; status: string }[] } }>(
      app.graphqlUrl,
      `mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id status } } ... on Error { message } } }`,
    );
    const leaseId = requested.body.data!.requestLease.leases![0]!.id;

    const client = wsClient(app.graphqlUrl);
    const subscription = `subscription ($id: ID!, $after: String) { leaseEvents(leaseId: $id, after: $after) { cursor log { type } lease { status } } }`;
    const untilActive = collect<LeaseEvent>(
      client,
      { query: subscription, variables: { id: leaseId, after: '0' } },
      (items) => items.some((item) => item.leaseEvents.lease.status === 'ACTIVE'),
    );
    const activeEvents = await untilActive.done;
    const cursors = activeEvents.map((event) => BigInt(event.leaseEvents.cursor));
    expect(cursors).toEqual([...cursors].sort((a, b) => (a < b ? -1 : 1)));

    const following = collect<LeaseEvent>(client, { query: subscription, variables: { id: leaseId, after: '0' } });
    const released = await graphqlRequest<{ releaseLease: { lease?: { id: string } } }>(
      app.graphqlUrl,
      'mutation ($id: ID!) { releaseLease(id: $id) { ... on ReleaseLeasePayload { lease { id } } ... on Error { message } } }',
      { id: leaseId },
    );
    expect(released.body.data?.releaseLease.lease?.id).toBe(leaseId);
    const all = await following.done;
    expect(all.at(-1)?.leaseEvents.lease.status).toBe('DESTROYED');

    // Reconnecting after any cursor gives exactly the events after it: no gap, no duplicate.
    const middle = all[Math.floor(all.length / 2)]!.leaseEvents.cursor;
    const resumed = await collect<LeaseEvent>(client, {
      query: subscription,
      variables: { id: leaseId, after: middle },
    }).done;
    expect(resumed.map((e) => e.leaseEvents.cursor)).toEqual(
      all.filter((e) => BigInt(e.leaseEvents.cursor) > BigInt(middle)).map((e) => e.leaseEvents.cursor),
    );
    // A replay shows each entry with the status the lease had then, not the status it has now.
    const replay = await collect<{ leaseEvents: { log: { type: string }; status: string; lease: { status: string } } }>(
      client,
      {
        query:
          'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { log { type } status lease { status } } }',
        variables: { id: leaseId },
      },
    ).done;
    const statuses = replay.map((e) => e.leaseEvents.status).filter((s, i, all) => s !== all[i - 1]);
    expect(statuses).toEqual(['PENDING', 'ACQUIRED', 'ACTIVE', 'RELEASED', 'DESTROYED']);
    expect(replay.every((e) => e.leaseEvents.lease.status === 'DESTROYED')).toBe(true);
    await client.dispose();
  });

  it('follows a lease over server-sent events from request to DESTROYED', async () => {
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      app.graphqlUrl,
      `mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }`,
    );
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    const subscription = `subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor lease { status } } }`;
    const active = await sseSubscription<LeaseEvent>(app.graphqlUrl, subscription, { id: leaseId }, (items) =>
      items.some((item) => item.leaseEvents.lease.status === 'ACTIVE'),
    );
    expect(active.length).toBeGreaterThan(0);
    const rest = sseSubscription<LeaseEvent>(app.graphqlUrl, subscription, { id: leaseId });
    await graphqlRequest(app.graphqlUrl, 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', {
      id: leaseId,
    });
    const all = await rest;
    expect(all.at(-1)?.leaseEvents.lease.status).toBe('DESTROYED');
    expect(new Set(all.map((e) => e.leaseEvents.cursor)).size).toBe(all.length);
  });
});
