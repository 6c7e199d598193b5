import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import type { AllocatorDeps } from '../src/allocator/context.js';
import { writeLog, type LogEntry } from '../src/allocator/logs.js';
import { allocatorOptions } from '../src/allocator/options.js';
import { inTransaction } from '../src/allocator/transaction.js';
import { loadConfig } from '../src/config.js';
import { eventsChannel, PostgresEventTarget } from '../src/events/postgres-event-target.js';
import { createDrydockPubSub, pubSubSink } from '../src/events/pubsub.js';
import type { Lease } from '../src/generated/prisma/client.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { someoneWaitsFor } from './support/row-locks.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';
import { collect, wsClient } from './support/ws.js';

// leaseEvents and resourceEvents read an object's log past the highest id they have sent. Its
// entries are written by several kinds of transaction (a resource's log also holds the entries of
// the leases on it): if one that took a lower id committed after one with a higher id had been
// read, that entry would never be sent. Here two transactions write to one object's log at once,
// the one with the lower id held open while the other goes ahead; the subscriber must get every
// entry, in id order, all the same. PostgreSQL only: PGlite runs one transaction at a time.

const quiet = createLogger('error', () => {});

type StreamEvent = { cursor: string; log: { type: string } };

describePostgres('event streams with transactions committing out of id order', () => {
  let db: TestDatabase;
  let app: App;
  let events: PostgresEventTarget;
  /** Transactions of the test's own, whose events reach the server as any process's do (NOTIFY). */
  let deps: AllocatorDeps;
  let token = '';

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
    events = new PostgresEventTarget(db.url!, quiet, eventsChannel(db.schema));
    await events.start();
    deps = {
      db,
      events: pubSubSink(createDrydockPubSub(events)),
      options: allocatorOptions(),
      queue: { wake: () => {} },
    } as unknown as AllocatorDeps;
    token = (await principalWithToken(db, 'admin', { isAdmin: true })).token;
    await call(
      `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) {
        __typename } }`,
    );
  });
  afterAll(async () => {
    await app?.close();
    await events?.close();
    await db?.dispose();
  });

  async function call<T>(query: string, variables: Record<string, unknown> = {}) {
    const { body } = await graphqlRequest<T>(app.graphqlUrl, query, variables, { authorization: `Bearer ${token}` });
    expect(body.errors).toBeUndefined();
    return body.data!;
  }

  async function activeLease(): Promise<{ id: string; row: Lease }> {
    const requested = await call<{ requestLease: { leases: { id: string; databaseId: number }[] } }>(
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id databaseId } } } }',
    );
    const { id, databaseId } = requested.requestLease.leases[0]!;
    const row = await waitFor(async () => {
      const found = await db.prisma.lease.findUniqueOrThrow({ where: { id: databaseId } });
      return found.status === 'ACTIVE' ? found : null;
    });
    return { id, row };
  }

  /** A log entry in a transaction of the test's own, which commits once `held` resolves. */
  function logEntry(entry: LogEntry, status: { lease?: string; resource?: string }, held?: Promise<void>) {
    let written!: (pid: number) => void;
    const inserted = new Promise<number>((resolve) => (written = resolve));
    const committed = inTransaction(deps, async (ctx) => {
      const log = await writeLog(ctx, entry, status);
      const [row] = await ctx.tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      written(row!.pid);
      await held;
      return log.id;
    });
    return { inserted, committed };
  }

  /**
   * Subscribes to `field` of one object from just before its newest entry, and resolves once that
   * entry is sent: the stream is live from then on.
   */
  async function subscribe(field: 'leaseEvents' | 'resourceEvents', id: string, where: object) {
    const [newest, before] = await db.prisma.log.findMany({ where, orderBy: { id: 'desc' }, take: 2 });
    const argument = field === 'leaseEvents' ? 'leaseId' : 'resourceId';
    const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${token}` });
    const stream = collect<Record<string, StreamEvent>>(client, {
      query: `subscription ($id: ID!, $after: String) { ${field}(${argument}: $id, after: $after) { cursor log { type } } }`,
      variables: { id, after: before!.id.toString() },
    });
    const sent = () => stream.items.map((item) => item[field]!);
    const sentUpTo = (cursor: bigint) => sent().some((event) => BigInt(event.cursor) >= cursor);
    await waitFor(() => sentUpTo(newest!.id));
    return { client, stream, sent, sentUpTo, start: before!.id };
  }

  /** The object's entries past `start` up to `last`, as `sent` must have them. */
  async function logged(where: object, start: bigint, last: bigint) {
    const logs = await db.prisma.log.findMany({
      where: { AND: [where, { id: { gt: start, lte: last } }] },
      orderBy: { id: 'asc' },
    });
    return logs.map((log) => ({ cursor: log.id.toString(), log: { type: log.type } }));
  }

  it("resourceEvents sends a resource's entry that committed after a lease's entry with a higher id", async () => {
    const lease = await activeLease();
    const resource = await db.prisma.resource.findUniqueOrThrow({ where: { id: lease.row.resourceId! } });
    const where = { resourceId: resource.id };
    const { client, stream, sent, sentUpTo, start } = await subscribe(
      'resourceEvents',
      Buffer.from(`Resource:${resource.id}`).toString('base64'),
      where,
    );
    try {
      const progress = { type: 'resource-setup-progress' as const, resourceId: resource.id };
      const ids = { blueprintId: resource.blueprintId };
      // The first writer takes its id and holds its transaction open.
      let commitFirst!: () => void;
      const first = logEntry(
        { ...progress, ...ids, data: { message: 'first' } },
        { resource: 'ACTIVE' },
        new Promise<void>((resolve) => (commitFirst = resolve)),
      );
      const firstPid = await first.inserted;
      // The second: the lease's release, whose update writes lease-released and lease-destroyed
      // to the resource's log. It waits for the first, or commits ahead of it and is sent.
      await call('mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id: lease.id });
      await waitFor(
        async () =>
          (await someoneWaitsFor(db.prisma, firstPid)) || sent().some((event) => event.log.type === 'lease-destroyed'),
      );
      commitFirst();
      await first.committed;
      await waitFor(
        async () => (await db.prisma.lease.findUniqueOrThrow({ where: { id: lease.row.id } })).status === 'DESTROYED',
      );
      // A last entry after all of them: once it is sent, everything before it has been.
      const last = await logEntry({ ...progress, ...ids, data: { message: 'last' } }, { resource: 'ACTIVE' }).committed;
      await waitFor(() => sentUpTo(last));
      const expected = await logged(where, start, last);
      expect(expected.map((event) => event.log.type)).toEqual(
        expect.arrayContaining(['resource-setup-progress', 'lease-released', 'lease-destroyed']),
      );
      expect(sent().filter((event) => BigInt(event.cursor) <= last)).toEqual(expected);
    } finally {
      stream.stop();
      await client.dispose();
    }
  });

  it("leaseEvents sends a lease's entry that committed after its release request with a higher id", async () => {
    const lease = await activeLease();
    const where = { leaseId: lease.row.id };
    const { client, stream, sent } = await subscribe('leaseEvents', lease.id, where);
    const start = (await db.prisma.log.findFirstOrThrow({ where, orderBy: { id: 'desc' } })).id;
    try {
      // The first writer (as a command run through the lease logs) takes its id and holds its
      // transaction open.
      let commitFirst!: () => void;
      const first = logEntry(
        { type: 'lease-command-started', data: { argv: ['true'], principalId: 1 }, leaseId: lease.row.id },
        { lease: 'ACTIVE' },
        new Promise<void>((resolve) => (commitFirst = resolve)),
      );
      const firstPid = await first.inserted;
      // The second: the release request, which writes lease-release-requested. It waits for the
      // first, or commits ahead of it and is sent.
      const released = call('mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id: lease.id });
      await waitFor(
        async () =>
          (await someoneWaitsFor(db.prisma, firstPid)) ||
          sent().some((event) => event.log.type === 'lease-release-requested'),
      );
      commitFirst();
      await first.committed;
      await released;
      // The stream ends once the lease is DESTROYED: by then it has sent all there is.
      await stream.done;
      const expected = await logged(where, start, BigInt(sent().at(-1)!.cursor));
      expect(expected.map((event) => event.log.type)).toEqual(
        expect.arrayContaining(['lease-command-started', 'lease-release-requested', 'lease-destroyed']),
      );
      expect(sent().filter((event) => BigInt(event.cursor) > start)).toEqual(expected);
    } finally {
      stream.stop();
      await client.dispose();
    }
  });
});
