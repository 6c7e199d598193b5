// Every typed error the API can return, each from a real request, and the data left as it was.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { collect, wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});
const pool = { services: [{ name: 's', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }] };
const errorFields = `__typename ... on Error { message }
  ... on ValidationError { path }
  ... on NotFoundError { entity databaseId }
  ... on IllegalTransitionError { entity from to }
  ... on ConflictError { holders { key } }`;

type Outcome = { __typename: string; message?: string; path?: string[]; entity?: string; from?: string; to?: string };

describeEachDatabase('typed errors', (kind) => {
  let db: TestDatabase;
  let app: App;
  const run = async (query: string, variables?: Record<string, unknown>) => {
    const { body } = await graphqlRequest<Record<string, Outcome>>(app.graphqlUrl, query, variables);
    expect(body.errors).toBeUndefined();
    return Object.values(body.data!)[0]!;
  };
  const counts = async () => ({
    blueprints: await db.prisma.blueprint.count(),
    leases: await db.prisma.lease.count(),
  });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
    await run(
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) { ${errorFields} } }`,
      { config: pool },
    );
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('ValidationError points at the bad field of a blueprint config and writes nothing', async () => {
    const before = await counts();
    const bad = { services: [{ name: 's', bindings: [{ name: 'h1', address: '10.0.0.1', port: 70000 }] }] };
    const result = await run(
      `mutation ($config: JSON!) { createBlueprint(input: { name: "bad", implementation: "host-pool", config: $config }) { ${errorFields} } }`,
      { config: bad },
    );
    expect(result.__typename).toBe('ValidationError');
    expect(result.path).toEqual(['config', 'services', '0', 'bindings', '0', 'port']);
    expect(await counts()).toEqual(before);
  });

  it('ValidationError for an unknown implementation and for bad lease requests', async () => {
    const before = await counts();
    const unknown = await run(
      `mutation { createBlueprint(input: { name: "x", implementation: "no-such-thing", config: {} }) { ${errorFields} } }`,
    );
    expect(unknown).toMatchObject({ __typename: 'ValidationError', path: ['implementation'] });
    const count = await run(`mutation { requestLease(input: { resourceType: "host", count: 0 }) { ${errorFields} } }`);
    expect(count).toMatchObject({ __typename: 'ValidationError', path: ['count'] });
    const attributes = await run(
      `mutation { requestLease(input: { resourceType: "host", attributes: [1, 2] }) { ${errorFields} } }`,
    );
    expect(attributes).toMatchObject({ __typename: 'ValidationError', path: ['attributes'] });
    const past = await run(
      `mutation { requestLease(input: { resourceType: "host", until: "2001-01-01T00:00:00Z" }) { ${errorFields} } }`,
    );
    expect(past).toMatchObject({ __typename: 'ValidationError', path: ['until'] });
    const nested = await run(
      `mutation { requestLease(input: { resourceType: "host", attributes: { platform: { os: "linux" } } }) { ${errorFields} } }`,
    );
    expect(nested).toMatchObject({ __typename: 'ValidationError', path: ['attributes', 'platform'] });
    expect(await counts()).toEqual(before);
  });

  it('NotFoundError for an object that does not exist', async () => {
    const id = Buffer.from('Lease:999999').toString('base64');
    const result = await run(`mutation ($id: ID!) { releaseLease(id: $id) { ${errorFields} } }`, { id });
    expect(result).toMatchObject({ __typename: 'NotFoundError', entity: 'lease' });
  });

  it('ConflictError for a blueprint name already taken', async () => {
    const before = await counts();
    const result = await run(
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) { ${errorFields} } }`,
      { config: pool },
    );
    expect(result.__typename).toBe('ConflictError');
    expect(await counts()).toEqual(before);
  });

  it('IllegalTransitionError for releasing a lease that is already gone', async () => {
    const requested = await run(
      `mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } ${errorFields} } }`,
    );
    const leaseId = (requested as unknown as { leases: { id: string }[] }).leases[0]!.id;
    const client = wsClient(app.graphqlUrl);
    const done = collect(client, {
      query: 'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor } }',
      variables: { id: leaseId },
    }).done;
    await run(`mutation ($id: ID!) { releaseLease(id: $id) { ${errorFields} } }`, { id: leaseId });
    await done;
    await client.dispose();
    const again = await run(`mutation ($id: ID!) { releaseLease(id: $id) { ${errorFields} } }`, { id: leaseId });
    expect(again).toMatchObject({ __typename: 'IllegalTransitionError', entity: 'lease', from: 'DESTROYED' });
  });

  it('a log cursor past the largest log id is refused like any other that is not one, not a crash', async () => {
    const requested = await run(
      `mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } ${errorFields} } }`,
    );
    const leaseId = (requested as unknown as { leases: { id: string }[] }).leases[0]!.id;
    const client = wsClient(app.graphqlUrl);
    try {
      for (const after of ['9223372036854775808', '9999999999999999999', '-1', 'abc']) {
        await expect(
          collect(client, {
            query: 'subscription ($id: ID!, $after: String) { leaseEvents(leaseId: $id, after: $after) { cursor } }',
            variables: { id: leaseId, after },
          }).done,
        ).rejects.toThrow('after must be a cursor from an earlier event');
      }
    } finally {
      await client.dispose();
    }
  });

  it('an id that is not a global id names nothing: NotFoundError, not a crash', async () => {
    const { body } = await graphqlRequest(
      app.graphqlUrl,
      'mutation { releaseLease(id: "not-a-global-id") { __typename } }',
    );
    expect(body).toEqual({ data: { releaseLease: { __typename: 'NotFoundError' } } });
  });
});
