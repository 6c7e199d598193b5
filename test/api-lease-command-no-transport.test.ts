import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { wsClient } from './support/ws.js';

// A lease whose host cannot run commands (its binding has no transport, or the server has the
// local transport switched off) is fine as a leaseId: runLeaseCommand answers a ConflictError that
// names the lease and its host and says why, not a ValidationError on leaseId (which the command
// line would print as "invalid leaseId: ..." or "--lease: ...").

const quiet = createLogger('error', () => {});

const RUN = `subscription ($lease: ID!, $argv: [String!]!) {
  runLeaseCommand(leaseId: $lease, argv: $argv) {
    __typename
    ... on Error { message }
    ... on ValidationError { path }
  }
}`;

describeEachDatabase('runLeaseCommand through a host that cannot run commands', (kind) => {
  let db: TestDatabase;
  let app: App;
  let token = '';
  const leases = { local: '', bare: '' };
  const databaseIds = { local: 0, bare: 0 };

  const call = async <T>(query: string, variables: Record<string, unknown> = {}) => {
    const { body } = await graphqlRequest<T>(app.graphqlUrl, query, variables, { authorization: `Bearer ${token}` });
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };

  async function activeLease(via: string): Promise<{ id: string; databaseId: number }> {
    const requested = await call<{ requestLease: { leases: { id: string; databaseId: number }[] } }>(
      'mutation ($a: JSON) { requestLease(input: { resourceType: "host", attributes: $a }) { ... on RequestLeasePayload { leases { id databaseId } } } }',
      { a: { via } },
    );
    const lease = requested.requestLease.leases[0]!;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { lease: now } = await call<{ lease: { status: string } }>(
        'query ($id: ID!) { lease(id: $id) { status } }',
        {
          id: lease.id,
        },
      );
      if (now.status === 'ACTIVE') return lease;
      if (Date.now() > deadline) throw new Error(`lease ${lease.databaseId} is still ${now.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The events of one run, over its own graphql-ws connection. */
  function run(target: App, lease: string): Promise<unknown[]> {
    const client = wsClient(target.graphqlUrl, { authorization: `Bearer ${token}` });
    const events: unknown[] = [];
    return new Promise<unknown[]>((resolve, reject) => {
      client.subscribe<{ runLeaseCommand: unknown }>(
        { query: RUN, variables: { lease, argv: ['true'] } },
        {
          next: (result) => {
            if (result.errors) reject(new Error(JSON.stringify(result.errors)));
            else events.push(result.data!.runLeaseCommand);
          },
          error: (error: unknown) => reject(error as Error),
          complete: () => resolve(events),
        },
      );
    }).finally(() => client.dispose());
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, allowLocalTransport: true },
      quiet,
    );
    token = (await principalWithToken(db, 'admin', { isAdmin: true })).token;
    await call(
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) {
        __typename } }`,
      {
        config: {
          services: [
            {
              name: 'build',
              bindings: [
                { name: 'h1', address: '10.0.0.9', port: 22, attributes: { via: 'nothing' } },
                {
                  name: 'here',
                  address: '127.0.0.1',
                  port: 22,
                  attributes: { via: 'local' },
                  transport: { kind: 'local' },
                },
              ],
            },
          ],
        },
      },
    );
    const bare = await activeLease('nothing');
    const local = await activeLease('local');
    Object.assign(leases, { bare: bare.id, local: local.id });
    Object.assign(databaseIds, { bare: bare.databaseId, local: local.databaseId });
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('a binding without a transport: a ConflictError naming the lease and its host', async () => {
    const lease = await db.prisma.lease.findUniqueOrThrow({ where: { id: databaseIds.bare } });
    const resource = await db.prisma.resource.findUniqueOrThrow({ where: { id: lease.resourceId! } });
    expect(await run(app, leases.bare)).toEqual([
      {
        __typename: 'ConflictError',
        message: `lease ${databaseIds.bare}'s host ${resource.name} cannot run commands: binding build/h1 has no transport configured`,
      },
    ]);
  });

  it('the local transport on a server that has it switched off: a ConflictError, not a bad leaseId', async () => {
    const strict = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, workerConcurrency: 0 },
      quiet,
    );
    try {
      expect(await run(strict, leases.local)).toEqual([
        {
          __typename: 'ConflictError',
          message: expect.stringMatching(
            new RegExp(
              `^lease ${databaseIds.local}'s host \\S+ cannot run commands: local transport is disabled \\(set ALLOW_LOCAL_TRANSPORT=true`,
            ),
          ),
        },
      ]);
    } finally {
      await strict.close();
    }
    // The same lease runs commands on the server that allows it.
    expect(await run(app, leases.local)).toContainEqual(expect.objectContaining({ __typename: 'LeaseCommandExit' }));
  });
});
