// Who acted on a lease or resource, as its log records it (an admin's drain, release, command or
// hand-off), is another principal's identity: a non-admin who sees the entry gets it as null, as
// the queue shows others' leases anonymously; its own id it still sees, and an admin sees all.
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
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
const dbId = (id: string) => Number(Buffer.from(id, 'base64').toString().split(':')[1]);

type Who = 'alice' | 'bob' | 'admin';
type Entry = { type: string; data: Record<string, unknown> };

/** Every number under a key naming a principal, at any depth. */
function principalIds(value: unknown): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    for (const [key, inner] of Object.entries(node)) {
      if (/^(author|principal|[a-z]+Principal)Id$/.test(key)) found.push({ [key]: inner });
      visit(inner);
    }
  };
  visit(value);
  return found;
}

describeEachDatabase('who acted, in the logs a non-admin reads', (kind) => {
  let db: TestDatabase;
  let app: App;
  const tokens = {} as Record<Who, string>;
  const principals = {} as Record<Who, number>;
  let lease = '';
  let resource = '';
  let ownLease = '';

  const call = async <T>(who: Who, query: string, variables: Record<string, unknown> = {}) => {
    const { body } = await graphqlRequest<T>(app.graphqlUrl, query, variables, {
      authorization: `Bearer ${tokens[who]}`,
    });
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };

  async function activeLease(who: Who): Promise<string> {
    const data = await call<{ requestLease: { leases: { id: string }[] } }>(
      who,
      `mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }`,
    );
    const id = data.requestLease.leases[0]!.id;
    await waitFor(
      async () => (await db.prisma.lease.findUniqueOrThrow({ where: { id: dbId(id) } })).status === 'ACTIVE',
    );
    return id;
  }

  async function runCommand(who: Who, leaseId: string): Promise<void> {
    const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${tokens[who]}` });
    try {
      const events = collect<{ runLeaseCommand: { __typename: string } }>(
        client,
        {
          query: `subscription ($id: ID!) { runLeaseCommand(leaseId: $id, argv: ["true"]) { __typename } }`,
          variables: { id: leaseId },
        },
        (items) => items.some((item) => item.runLeaseCommand.__typename === 'LeaseCommandExit'),
      );
      expect((await events.done).at(-1)?.runLeaseCommand.__typename).toBe('LeaseCommandExit');
    } finally {
      await client.dispose();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, allowLocalTransport: true },
      quiet,
    );
    for (const who of ['alice', 'bob', 'admin'] as const) {
      const made = await principalWithToken(db, who, { isAdmin: who === 'admin' });
      tokens[who] = made.token;
      principals[who] = made.principal.id;
    }
    const created = await call<{ createBlueprint: { blueprint: { databaseId: number } } }>(
      'admin',
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) {
        ... on BlueprintPayload { blueprint { databaseId } } } }`,
      {
        config: {
          services: [
            {
              name: 'build',
              bindings: ['one', 'two'].map((name) => ({
                name,
                address: '127.0.0.1',
                port: 22,
                transport: { kind: 'local' },
              })),
            },
          ],
        },
      },
    );
    for (const who of ['alice', 'bob'] as const)
      await db.prisma.authorization.create({
        data: {
          blueprintId: created.createBlueprint.blueprint.databaseId,
          principalId: principals[who],
          blueprintState: 'AUTHORIZED',
        },
      });

    // alice's lease, handed to bob by an admin, who then runs a command on it and drains its
    // resource, and ends the drain.
    lease = await activeLease('alice');
    const transferred = await call<{ transferLease: { __typename: string } }>(
      'admin',
      `mutation ($id: ID!, $to: ID!) { transferLease(id: $id, toPrincipalId: $to) { __typename } }`,
      { id: lease, to: gid('Principal', principals.bob) },
    );
    expect(transferred.transferLease.__typename).toBe('TransferLeasePayload');
    await runCommand('admin', lease);
    const row = await db.prisma.lease.findUniqueOrThrow({ where: { id: dbId(lease) } });
    resource = gid('Resource', row.resourceId!);
    for (const mutation of ['drainResource(id: $id)', 'undrainResource(id: $id)']) {
      const done = await call<Record<string, { __typename: string }>>(
        'admin',
        `mutation ($id: ID!) { result: ${mutation} { __typename } }`,
        { id: resource },
      );
      expect(done['result']?.__typename).toBe('ResourcePayload');
    }
    // bob's own lease, which bob runs a command on and releases himself.
    ownLease = await activeLease('bob');
    await runCommand('bob', ownLease);
    await call('bob', 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id: ownLease });
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  const reads = `query ($lease: ID!, $resource: ID!, $own: ID!) {
    lease(id: $lease) { logs { type data } }
    leaseLogs: logs(leaseId: $lease) { edges { node { type data } } }
    resourceLogs: logs(resourceId: $resource) { edges { node { type data } } }
    own: lease(id: $own) { logs { type data } }
  }`;
  type Reads = {
    lease: { logs: Entry[] };
    leaseLogs: { edges: { node: Entry }[] };
    resourceLogs: { edges: { node: Entry }[] };
    own: { logs: Entry[] };
  };
  const dataOf = (entries: Entry[], type: string) => entries.filter((e) => e.type === type).map((e) => e.data);

  it("a non-admin gets others' ids as null, its own as they are, over HTTP", async () => {
    const read = await call<Reads>('bob', reads, { lease, resource, own: ownLease });
    const leaseLog = read.lease.logs;
    expect(read.leaseLogs.edges.map((edge) => edge.node)).toEqual(leaseLog);
    expect(dataOf(leaseLog, 'lease-transferred')).toEqual([
      { fromPrincipalId: null, toPrincipalId: principals.bob, byPrincipalId: null, fence: expect.any(Number) },
    ]);
    expect(dataOf(leaseLog, 'lease-command-started')).toEqual([{ argv: ['true'], principalId: null }]);
    const resourceLog = read.resourceLogs.edges.map((edge) => edge.node);
    expect(dataOf(resourceLog, 'resource-draining')).toEqual([{ authorId: null, release: false }]);
    expect(dataOf(resourceLog, 'resource-undrained')).toEqual([{ authorId: null }]);
    expect(dataOf(read.own.logs, 'lease-command-started')).toEqual([{ argv: ['true'], principalId: principals.bob }]);
    expect(dataOf(read.own.logs, 'lease-release-requested')).toEqual([{ authorId: principals.bob }]);
    for (const other of [principals.admin, principals.alice])
      expect(principalIds(read).filter((found) => Object.values(found).includes(other))).toEqual([]);

    // An admin sees who.
    const admin = await call<Reads>('admin', reads, { lease, resource, own: ownLease });
    expect(dataOf(admin.lease.logs, 'lease-transferred')).toEqual([
      {
        fromPrincipalId: principals.alice,
        toPrincipalId: principals.bob,
        byPrincipalId: principals.admin,
        fence: expect.any(Number),
      },
    ]);
    expect(dataOf(admin.lease.logs, 'lease-command-started')).toEqual([
      { argv: ['true'], principalId: principals.admin },
    ]);
    expect(
      dataOf(
        admin.resourceLogs.edges.map((edge) => edge.node),
        'resource-draining',
      ),
    ).toEqual([{ authorId: principals.admin, release: false }]);
  });

  it("a non-admin gets others' ids as null in leaseEvents and resourceEvents, over graphql-ws", async () => {
    const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${tokens.bob}` });
    try {
      const leaseEvents = collect<{ leaseEvents: { log: Entry } }>(
        client,
        {
          query: `subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { log { type data } } }`,
          variables: { id: lease },
        },
        (items) => items.some((item) => item.leaseEvents.log.type === 'lease-command-finished'),
      );
      const resourceEvents = collect<{ resourceEvents: { log: Entry } }>(
        client,
        {
          query: `subscription ($id: ID!) { resourceEvents(resourceId: $id, after: "0") { log { type data } } }`,
          variables: { id: resource },
        },
        (items) => items.some((item) => item.resourceEvents.log.type === 'resource-undrained'),
      );
      const leaseLog = (await leaseEvents.done).map((item) => item.leaseEvents.log);
      const resourceLog = (await resourceEvents.done).map((item) => item.resourceEvents.log);
      expect(dataOf(leaseLog, 'lease-transferred')).toEqual([
        { fromPrincipalId: null, toPrincipalId: principals.bob, byPrincipalId: null, fence: expect.any(Number) },
      ]);
      expect(dataOf(leaseLog, 'lease-command-started')).toEqual([{ argv: ['true'], principalId: null }]);
      expect(dataOf(resourceLog, 'resource-draining')).toEqual([{ authorId: null, release: false }]);
      expect(dataOf(resourceLog, 'resource-undrained')).toEqual([{ authorId: null }]);
      for (const other of [principals.admin, principals.alice])
        expect(principalIds([leaseLog, resourceLog]).filter((found) => Object.values(found).includes(other))).toEqual(
          [],
        );
    } finally {
      await client.dispose();
    }
  });
});
