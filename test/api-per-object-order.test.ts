import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { waitFor } from './support/wait.js';
import { collect, wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});
const LEASES = 16;

type Change = { id: string; status: string; changeCursor: string };

// The order a lease's status moves in when nothing breaks (no lease here is reacquired).
const leaseRank: Record<string, number> = { PENDING: 0, ACQUIRED: 1, ACTIVE: 2, RELEASED: 3, DESTROYED: 4 };

/** Each object's events as one subscription delivered them. */
function byObject(changes: Change[]): Map<string, Change[]> {
  const grouped = new Map<string, Change[]>();
  for (const change of changes) grouped.set(change.id, [...(grouped.get(change.id) ?? []), change]);
  return grouped;
}

describePostgres('per-object order of the subscriptions across two server processes', () => {
  let db: TestDatabase;
  let a: App;
  let b: App;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, rateLimitPerMinute: 1e9 };
    // Both run workers: a lease's changes are made by either process, and each one's subscribers
    // hear of the other's through NOTIFY.
    a = await serve(db, config, quiet);
    b = await serve(db, config, quiet);
    const bindings = Array.from({ length: LEASES }, (_, i) => `{ name: "h${i}", address: "10.0.1.${i}", port: 22 }`);
    await graphqlRequest(
      a.graphqlUrl,
      `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [${bindings.join(',')}] }] } }) { __typename } }`,
    );
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.dispose();
  });

  it('every subscriber on either process gets each lease and resource in commit order, each event with its cursor', async () => {
    const clients = [wsClient(a.graphqlUrl), wsClient(a.graphqlUrl), wsClient(b.graphqlUrl), wsClient(b.graphqlUrl)];
    const leaseStreams = clients.map((client) =>
      collect<{ leasesChanged: Change }>(client, {
        query: 'subscription { leasesChanged { id status changeCursor } }',
      }),
    );
    const resourceStreams = clients.map((client) =>
      collect<{ resourcesChanged: Change }>(client, {
        query: 'subscription { resourcesChanged { id status changeCursor } }',
      }),
    );
    const members = async (app: App) =>
      Number(
        /^drydock_subscription_cohort_members (\d+)$/m.exec(await (await fetch(`${app.url}/metrics`)).text())?.[1],
      );
    // Subscribed once each process counts its clients' 2 × 2 *Changed subscriptions (on a busy
    // machine a connection can take seconds to open), and a change made now reaches every stream.
    await waitFor(async () => (await members(a)) === 4 && (await members(b)) === 4, 60_000);
    const probe = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      a.graphqlUrl,
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const probeId = probe.body.data!.requestLease.leases[0]!.id;
    await waitFor(() => leaseStreams.every((s) => s.items.some((i) => i.leasesChanged.id === probeId)));

    // Requests and releases through both processes at once, racing each other's workers.
    const requested = await Promise.all(
      Array.from({ length: LEASES - 1 }, (_, i) =>
        graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
          (i % 2 ? a : b).graphqlUrl,
          'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
        ),
      ),
    );
    const ids = [probeId, ...requested.map((r) => r.body.data!.requestLease.leases[0]!.id)];
    const statusOf = async (id: string) =>
      (
        await graphqlRequest<{ lease: { status: string } }>(
          a.graphqlUrl,
          'query ($id: ID!) { lease(id: $id) { status } }',
          {
            id,
          },
        )
      ).body.data!.lease.status;
    await waitFor(async () => (await Promise.all(ids.map(statusOf))).every((s) => s === 'ACTIVE'), 30_000);
    // Each lease followed live (no replay) twice on one process, sharing an execution, and once on
    // the other: all three must carry the release's entries in commit order.
    const follow = 'subscription ($id: ID!) { leaseEvents(leaseId: $id) { cursor log { type } } }';
    type Followed = { leaseEvents: { cursor: string; log: { type: string } } };
    const followers = ids.map((id, i) =>
      [clients[0]!, clients[1]!, clients[2 + (i % 2)]!].map((client) =>
        collect<Followed>(client, { query: follow, variables: { id } }),
      ),
    );
    // In place once each process counts them (with the 2 × 2 *Changed subscriptions of its clients).
    await waitFor(async () => (await members(a)) === 2 * LEASES + 4 && (await members(b)) === LEASES + 4);
    await Promise.all(
      ids.map((id, i) =>
        graphqlRequest((i % 2 ? b : a).graphqlUrl, 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', {
          id,
        }),
      ),
    );
    await waitFor(
      () =>
        leaseStreams.every((s) =>
          ids.every((id) => s.items.some((i) => i.leasesChanged.id === id && i.leasesChanged.status === 'DESTROYED')),
        ),
      30_000,
    );

    for (const [i, streams] of followers.entries()) {
      const [shared, sharedToo, other] = await Promise.all(streams.map((stream) => stream.done));
      const cursors = shared!.map((event) => BigInt(event.leaseEvents.cursor));
      expect(cursors, `leaseEvents cursors of ${ids[i]}`).toEqual(
        [...new Set(cursors)].sort((x, y) => (x < y ? -1 : 1)),
      );
      expect(shared!.at(-1)?.leaseEvents.log.type).toBe('lease-destroyed');
      expect(sharedToo).toEqual(shared);
      expect(other).toEqual(shared);
    }

    for (const stream of leaseStreams) {
      stream.stop();
      for (const [id, events] of byObject(stream.items.map((i) => i.leasesChanged))) {
        const cursors = events.map((e) => BigInt(e.changeCursor));
        expect(cursors, `cursors of ${id}`).toEqual([...cursors].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
        const ranks = events.map((e) => leaseRank[e.status]!);
        expect(ranks, `statuses of ${id}: ${events.map((e) => e.status).join(' → ')}`).toEqual([...ranks].sort());
        expect(events.at(-1)!.status).toBe('DESTROYED');
      }
    }
    // Resources: their cursors never go back either, and each event's cursor is a log entry of
    // that resource (the row and its cursor come from one snapshot).
    const resourceLogs = new Set(
      (await db.prisma.log.findMany({ where: { resourceId: { not: null } }, select: { id: true } })).map((l) => l.id),
    );
    for (const stream of resourceStreams) {
      stream.stop();
      expect(stream.items.length).toBeGreaterThan(0);
      for (const [id, events] of byObject(stream.items.map((i) => i.resourcesChanged))) {
        const cursors = events.map((e) => BigInt(e.changeCursor));
        expect(cursors, `cursors of ${id}`).toEqual([...cursors].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
        for (const cursor of cursors) expect(resourceLogs.has(cursor)).toBe(true);
      }
    }
    // Outside a *Changed event there is no event cursor.
    const plain = await graphqlRequest<{ lease: { changeCursor: string | null } }>(
      a.graphqlUrl,
      'query ($id: ID!) { lease(id: $id) { changeCursor } }',
      { id: probeId },
    );
    expect(plain.body.data!.lease.changeCursor).toBeNull();
    await Promise.all(clients.map((client) => client.dispose()));
  });
});
