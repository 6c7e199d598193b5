// What the API says must be what happened, and what a client names must be what it means: a
// lease's statusReason is the reason its log gives, an id of the wrong type is refused rather than
// read as an id of another, an empty resourceType is refused rather than defaulted, and a refusal
// names no blueprint the caller may not see.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';
import { wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
const hostPool = (names: string[]) => ({
  services: [{ name: 'build', bindings: names.map((name, i) => ({ name, address: `10.0.0.${i + 1}`, port: 22 })) }],
});

type LeaseRow = {
  databaseId: number;
  status: string;
  statusReason: string | null;
  resource: { databaseId: number } | null;
  logs: { type: string; data: Record<string, unknown> }[];
};

describeEachDatabase('lease reasons, id types and refusals through the API', (kind) => {
  let db: TestDatabase;
  let app: App;
  let alice = '';
  let bob = '';

  const call = <T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}, token = '') =>
    graphqlRequest<T>(app.graphqlUrl, query, variables, token ? { authorization: `Bearer ${token}` } : {}).then(
      (response) => response.body,
    );

  const createBlueprint = async (input: Record<string, unknown>) => {
    const body = await call<{ createBlueprint: { blueprint?: { databaseId: number } } }>(
      `mutation ($input: CreateBlueprintInput!) {
        createBlueprint(input: $input) { __typename ... on BlueprintPayload { blueprint { databaseId } } }
      }`,
      { input },
    );
    return body.data!.createBlueprint.blueprint!.databaseId;
  };

  const requestLease = async (input: Record<string, unknown>, token = '') => {
    const body = await call<{ requestLease: { leases: { databaseId: number }[] } }>(
      'mutation ($input: RequestLeaseInput!) { requestLease(input: $input) { ... on RequestLeasePayload { leases { databaseId } } } }',
      { input },
      token,
    );
    return body.data!.requestLease.leases[0]!.databaseId;
  };

  const readLease = async (id: number, token = '') => {
    const body = await call<{ lease: LeaseRow | null }>(
      `query ($id: ID!) { lease(id: $id) {
        databaseId status statusReason resource { databaseId } logs { type data }
      } }`,
      { id: gid('Lease', id) },
      token,
    );
    return body.data!.lease!;
  };

  const leaseIn = (id: number, status: string, token = '') =>
    waitFor(async () => {
      const lease = await readLease(id, token);
      return lease.status === status ? lease : null;
    });

  /**
   * The rows a refused request could have written. Only the log entries a request writes count:
   * the allocator may log about idle resources meanwhile.
   */
  const rows = async () => ({
    leases: await db.prisma.lease.count(),
    gangs: await db.prisma.gang.count(),
    requestLogs: await db.prisma.log.count({
      where: { type: { in: ['lease-requested', 'lease-release-requested', 'blueprint-created'] } },
    }),
    blueprints: await db.prisma.blueprint.count(),
    authorizations: await db.prisma.authorization.count(),
    commands: await db.prisma.command.count(),
  });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
    alice = (await principalWithToken(db, 'alice')).token;
    bob = (await principalWithToken(db, 'bob')).token;
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it("a released lease's statusReason is its log's reason: command, expired, resource-released", async () => {
    await createBlueprint({ name: 'hosts', implementation: 'host-pool', config: hostPool(['h1', 'h2', 'h3']) });
    const ended = (lease: LeaseRow) => {
      const released = lease.logs.find((log) => log.type === 'lease-released');
      return { statusReason: lease.statusReason, logged: released?.data['reason'] };
    };

    const byCommand = await requestLease({ resourceType: 'host' });
    await leaseIn(byCommand, 'ACTIVE');
    const release = await call<{ releaseLease: { __typename: string } }>(
      'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }',
      { id: gid('Lease', byCommand) },
    );
    expect(release.data?.releaseLease.__typename).toBe('ReleaseLeasePayload');
    expect(ended(await leaseIn(byCommand, 'DESTROYED'))).toEqual({ statusReason: 'command', logged: 'command' });

    const expiring = await requestLease({ resourceType: 'host', ttlSeconds: 1 });
    expect(ended(await leaseIn(expiring, 'DESTROYED'))).toEqual({ statusReason: 'expired', logged: 'expired' });

    const onReleased = await requestLease({ resourceType: 'host' });
    const { resource } = await leaseIn(onReleased, 'ACTIVE');
    const releaseResource = await call<{ releaseResource: { __typename: string } }>(
      'mutation ($id: ID!) { releaseResource(id: $id) { __typename } }',
      { id: gid('Resource', resource!.databaseId) },
    );
    expect(releaseResource.data?.releaseResource.__typename).toBe('ResourcePayload');
    expect(ended(await leaseIn(onReleased, 'DESTROYED'))).toEqual({
      statusReason: 'resource-released',
      logged: 'resource-released',
    });
  });

  it('an id of another type than the argument takes is refused (BAD_USER_INPUT) everywhere, nothing written', async () => {
    const blueprintId = await createBlueprint({
      name: 'typed',
      implementation: 'host-pool',
      config: hostPool(['t1']),
    });
    const leaseId = await requestLease({ resourceType: 'host', blueprintIds: [gid('Blueprint', blueprintId)] });
    const { resource } = await leaseIn(leaseId, 'ACTIVE');
    const resourceId = resource!.databaseId;
    // The number of each is one a row of the expected type also has: used as it is, it would name
    // blueprint `blueprintId`'s leases, or lease `leaseId`.
    const asResource = gid('Resource', blueprintId);
    const asBlueprint = gid('Blueprint', leaseId);
    const asLease = gid('Lease', resourceId);
    const typed = await call<{ leases: { edges: unknown[] } }>(
      'query ($id: ID!) { leases(filter: { blueprintId: $id }) { edges { cursor } } }',
      { id: gid('Blueprint', blueprintId) },
    );
    expect(typed.data?.leases.edges.length).toBeGreaterThan(0);

    const query = (field: string) => `query ($id: ID!) { ${field} }`;
    const mutation = (field: string) => `mutation ($id: ID!) { ${field} }`;
    const cases: [operation: string, id: string][] = [
      [query('leases(filter: { blueprintId: $id }) { edges { cursor } }'), asResource],
      [query('leases(filter: { resourceId: $id }) { edges { cursor } }'), asLease],
      [query('leases(filter: { ownerId: $id }) { edges { cursor } }'), asLease],
      [query('resources(filter: { blueprintId: $id }) { edges { cursor } }'), asResource],
      [query('logs(leaseId: $id) { edges { cursor } }'), asBlueprint],
      [query('logs(resourceId: $id) { edges { cursor } }'), asLease],
      [query('logs(blueprintId: $id) { edges { cursor } }'), asResource],
      [query('lease(id: $id) { id }'), asBlueprint],
      [query('blueprint(id: $id) { id }'), asResource],
      [query('leaseCandidates(input: { resourceType: "host", blueprintIds: [$id] }) { __typename }'), asResource],
      [mutation('releaseLease(id: $id) { __typename }'), asBlueprint],
      [mutation('requestLease(input: { resourceType: "host", blueprintIds: [$id] }) { __typename }'), asResource],
      [
        mutation('requestGang(input: { parts: [{ resourceType: "host", blueprintIds: [$id] }] }) { __typename }'),
        asResource,
      ],
    ];
    const before = await rows();
    const answers = new Map<string, unknown>();
    for (const [operation, id] of cases) {
      const body = await call(operation, { id });
      answers.set(operation, { data: body.data, codes: (body.errors ?? []).map((e) => e.extensions?.['code']) });
    }
    for (const [operation] of cases)
      expect(answers.get(operation), operation).toMatchObject({ codes: ['BAD_USER_INPUT'] });
    const refused = await call('query ($id: ID!) { leases(filter: { blueprintId: $id }) { edges { cursor } } }', {
      id: asResource,
    });
    expect(refused.errors?.[0]?.message).toBe('blueprintId: expected the id of a Blueprint, got the id of a Resource');

    // A subscription's argument takes the same check.
    const client = wsClient(app.graphqlUrl);
    try {
      const outcome = await new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: 'subscription ($id: ID!) { leaseEvents(leaseId: $id) { cursor } }', variables: { id: asBlueprint } },
          { next: resolve, error: resolve, complete: () => resolve('completed') },
        );
      });
      expect(JSON.stringify(outcome)).toContain('BAD_USER_INPUT');
    } finally {
      await client.dispose();
    }
    expect(await rows()).toEqual(before);
    expect((await readLease(leaseId)).status).toBe('ACTIVE');

    // node and nodes take an id of any type; a malformed id still finds nothing.
    const node = await call<{ node: { id: string } | null; lease: null }>(
      'query ($id: ID!, $bad: ID!) { node(id: $id) { id } lease(id: $bad) { id } }',
      { id: gid('Resource', resourceId), bad: 'not-an-id' },
    );
    expect(node).toEqual({ data: { node: { id: gid('Resource', resourceId) }, lease: null } });
  });

  it('createBlueprint refuses an empty resourceType with a ValidationError; omitted, it defaults', async () => {
    const before = await rows();
    for (const resourceType of ['', '   ']) {
      const body = await call<{ createBlueprint: { __typename: string; path?: string[] } }>(
        `mutation ($input: CreateBlueprintInput!) {
          createBlueprint(input: $input) { __typename ... on ValidationError { path } }
        }`,
        {
          input: {
            name: `empty ${resourceType.length}`,
            implementation: 'host-pool',
            resourceType,
            config: hostPool(['e1']),
          },
        },
      );
      expect(body.data?.createBlueprint, JSON.stringify(resourceType)).toEqual({
        __typename: 'ValidationError',
        path: ['resourceType'],
      });
    }
    expect(await rows()).toEqual(before);
    const defaulted = await createBlueprint({
      name: 'defaulted',
      implementation: 'host-pool',
      config: hostPool(['d1']),
    });
    expect((await db.prisma.blueprint.findUniqueOrThrow({ where: { id: defaulted } })).resourceType).toBe('host');
  });

  it('"not authorized on any of blueprints" names only the blueprints the lease owner may see', async () => {
    const seen = await createBlueprint({
      name: 'locked seen',
      implementation: 'host-pool',
      resourceType: 'locked',
      config: hostPool(['s1']),
    });
    const hidden = await createBlueprint({
      name: 'locked hidden',
      implementation: 'host-pool',
      resourceType: 'locked',
      config: hostPool(['x1']),
    });
    // Alice asked for one of them (not yet granted): that one she sees, the other she does not.
    const asked = await call<{ requestBlueprintAuthorization: { __typename: string } }>(
      'mutation ($id: ID!) { requestBlueprintAuthorization(blueprintId: $id) { __typename } }',
      { id: gid('Blueprint', seen) },
      alice,
    );
    expect(asked.errors).toBeUndefined();
    const visible = await call<{ blueprints: { edges: { node: { databaseId: number } }[] } }>(
      '{ blueprints(resourceType: "locked") { edges { node { databaseId } } } }',
      {},
      alice,
    );
    expect(visible.data?.blueprints.edges.map((e) => e.node.databaseId)).toEqual([seen]);

    const names = (id: number) => new RegExp(`\\b${id}\\b`);
    const refusal = async (token: string) => {
      const id = await requestLease({ resourceType: 'locked' }, token);
      const lease = await leaseIn(id, 'DESTROYED', token);
      expect(lease.statusReason).toBe('no-authorizations');
      return lease.logs.find((log) => log.type === 'lease-broken')!.data;
    };

    const forAlice = await refusal(alice);
    expect(forAlice['message']).toMatch(names(seen));
    expect(forAlice['message']).not.toMatch(names(hidden));
    expect(forAlice['blueprintIds']).toEqual([seen]);

    const forBob = await refusal(bob);
    expect(forBob['message']).toBe('not authorized on any blueprint that yields "locked"');
    expect(forBob).not.toHaveProperty('blueprintIds');
  });
});
