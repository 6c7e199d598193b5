import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';
import { collect, wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});
/** Long enough for a live event on a loaded machine; short enough that a missing one fails soon. */
const LIVE_MS = 15_000;

type ResourceEvent = { resourceEvents: { cursor: string; log: { type: string; leaseDatabaseId: number | null } } };

const LEASE_ENDS = ['lease-acquired', 'lease-activated', 'lease-released', 'lease-destroyed'];

// resourceEvents is "every log entry of one resource, in order": the entries of leases on the
// resource are in its log, so they must arrive live, as they are committed, and not wait for
// the resource's own next entry (here there is none).
describeEachDatabase('resourceEvents delivers the entries of leases on the resource live', (kind) => {
  let db: TestDatabase;
  /** Where the leases are requested and released (its worker grants them). */
  let writer: App;
  /** Where the subscribers are: on PostgreSQL another process, told of the changes by NOTIFY. */
  let reader: App;
  const tokens = { admin: '', alice: '', bob: '' };

  async function call<T>(who: keyof typeof tokens, query: string, variables: Record<string, unknown> = {}) {
    const { body } = await graphqlRequest<T>(writer.graphqlUrl, query, variables, {
      authorization: `Bearer ${tokens[who]}`,
    });
    expect(body.errors).toBeUndefined();
    return body.data!;
  }

  /** A lease of `who`'s, once ACTIVE (the host pool has one host: it is on that host's resource). */
  async function activeLease(who: 'alice' | 'bob') {
    const data = await call<{ requestLease: { leases: { id: string; databaseId: number }[] } }>(
      who,
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id databaseId } } } }',
    );
    const lease = data.requestLease.leases[0]!;
    const row = await waitFor(async () => {
      const found = await db.prisma.lease.findUniqueOrThrow({ where: { id: lease.databaseId } });
      return found.status === 'ACTIVE' ? found : null;
    }, LIVE_MS);
    return { ...lease, resourceId: row.resourceId! };
  }

  async function release(who: 'alice' | 'bob', lease: { id: string; databaseId: number }) {
    await call(who, 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id: lease.id });
    await waitFor(
      async () => (await db.prisma.lease.findUniqueOrThrow({ where: { id: lease.databaseId } })).status === 'DESTROYED',
      LIVE_MS,
    );
  }

  /** The resource's log entries past `after`, as the database has them. */
  const logAfter = (resourceId: number, after: bigint) =>
    db.prisma.log.findMany({ where: { resourceId, id: { gt: after } }, orderBy: { id: 'asc' } });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false };
    writer = await serve(db, config, quiet);
    reader = kind === 'postgresql' ? await serve(db, config, quiet) : writer;
    const admin = await principalWithToken(db, 'admin', { isAdmin: true });
    const alice = await principalWithToken(db, 'alice');
    const bob = await principalWithToken(db, 'bob');
    Object.assign(tokens, { admin: admin.token, alice: alice.token, bob: bob.token });
    const created = await call<{ createBlueprint: { blueprint: { databaseId: number } } }>(
      'admin',
      `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) {
        ... on BlueprintPayload { blueprint { databaseId } } } }`,
    );
    for (const principal of [alice.principal, bob.principal]) {
      await db.prisma.authorization.create({
        data: {
          blueprintId: created.createBlueprint.blueprint.databaseId,
          principalId: principal.id,
          blueprintState: 'AUTHORIZED',
        },
      });
    }
  }, 60_000);
  afterAll(async () => {
    if (reader !== writer) await reader?.close();
    await writer?.close();
    await db?.dispose();
  });

  it("lease-acquired, -activated, -released and -destroyed arrive without a resource event; a non-admin sees only its own leases' entries", async () => {
    // Alice's lease keeps the shared host's resource hers to see (a non-admin sees a resource
    // only while it holds a live lease on it).
    const held = await activeLease('alice');
    const resourceId = held.resourceId;
    const subscription = {
      query: `subscription ($id: ID!) {
        resourceEvents(resourceId: $id, after: "0") { cursor log { type leaseDatabaseId } } }`,
      variables: { id: Buffer.from(`Resource:${resourceId}`).toString('base64') },
    };
    const adminClient = wsClient(reader.graphqlUrl, { token: tokens.admin });
    const aliceClient = wsClient(reader.graphqlUrl, { token: tokens.alice });
    try {
      const adminStream = collect<ResourceEvent>(adminClient, subscription);
      const aliceStream = collect<ResourceEvent>(aliceClient, subscription);
      // An entry a subscriber may not see, read for it anyway, is refused field by field: an error.
      const failures: unknown[] = [];
      for (const stream of [adminStream, aliceStream]) stream.done.catch((error: unknown) => failures.push(error));
      const cursors = (stream: { items: ResourceEvent[] }) =>
        stream.items.map((item) => BigInt(item.resourceEvents.cursor));

      // Both have replayed the log as it is now (its newest entry is one alice may see): from
      // here on, whatever either stream gets it can only get live.
      const [newest] = await db.prisma.log.findMany({ where: { resourceId }, orderBy: { id: 'desc' }, take: 1 });
      const marker = newest!.id;
      await waitFor(() => [adminStream, aliceStream].every((stream) => cursors(stream).includes(marker)), LIVE_MS);
      const replayed = { admin: adminStream.items.length, alice: aliceStream.items.length };

      // Bob's lease lands on the same resource and ends: the admin sees its entries as they come.
      const bobs = await activeLease('bob');
      expect(bobs.resourceId).toBe(resourceId);
      await release('bob', bobs);
      const bobsEntries = (await logAfter(resourceId, marker)).filter((log) => log.leaseId === bobs.databaseId);
      expect(bobsEntries.map((log) => log.type)).toEqual(expect.arrayContaining(LEASE_ENDS));
      const bobsLast = bobsEntries.at(-1)!.id;
      await waitFor(() => cursors(adminStream).includes(bobsLast), LIVE_MS);

      // Alice's own second lease: she gets its entries live, and none of bob's. (The admin's
      // stream getting them too shows that bob's lease-destroyed did not end the resource's.)
      const alices = await activeLease('alice');
      expect(alices.resourceId).toBe(resourceId);
      await release('alice', alices);
      const logged = await logAfter(resourceId, marker);
      const alicesLast = logged.filter((log) => log.leaseId === alices.databaseId).at(-1)!.id;
      await waitFor(
        () => cursors(aliceStream).includes(alicesLast) && cursors(adminStream).includes(alicesLast),
        LIVE_MS,
      );

      // Nothing about the resource itself was written meanwhile: only the leases' events woke the
      // streams.
      expect(logged.filter((log) => log.leaseId === null)).toEqual([]);
      const live = (stream: { items: ResourceEvent[] }, from: number) =>
        stream.items
          .slice(from)
          .map((item) => ({ cursor: BigInt(item.resourceEvents.cursor), ...item.resourceEvents.log }));
      const asLogged = (rows: typeof logged) =>
        rows.map((log) => ({ cursor: log.id, type: log.type, leaseDatabaseId: log.leaseId }));
      // The admin got every entry, in order, once; alice exactly her lease's.
      expect(live(adminStream, replayed.admin)).toEqual(asLogged(logged));
      expect(live(aliceStream, replayed.alice)).toEqual(
        asLogged(logged.filter((log) => log.leaseId === alices.databaseId)),
      );
      expect(
        live(aliceStream, replayed.alice)
          .filter((event) => LEASE_ENDS.includes(event.type))
          .map((event) => event.type),
      ).toEqual(LEASE_ENDS);
      expect(failures).toEqual([]);
      adminStream.stop();
      aliceStream.stop();
      await release('alice', held);
    } finally {
      await adminClient.dispose();
      await aliceClient.dispose();
    }
  }, 120_000);
});
