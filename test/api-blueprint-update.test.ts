// updateBlueprint refuses what createBlueprint refuses, and a change of resourceType while the
// blueprint's resources still exist (leases of the old type hold them).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';

let db: TestDatabase;
let app: App;
let token = '';

type Payload = {
  __typename: string;
  message?: string;
  path?: string[];
  blueprint?: { name: string; resourceType: string };
};

async function call<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await graphqlRequest<T>(app.graphqlUrl, query, variables, { authorization: `Bearer ${token}` });
  expect(response.body.errors).toBeUndefined();
  return response.body.data!;
}

const update = async (id: string, input: Record<string, unknown>) =>
  (
    await call<{ updateBlueprint: Payload }>(
      `mutation ($id: ID!, $input: UpdateBlueprintInput!) { updateBlueprint(id: $id, input: $input) {
        __typename ... on Error { message } ... on ValidationError { path }
        ... on BlueprintPayload { blueprint { name resourceType } } } }`,
      { id, input },
    )
  ).updateBlueprint;

beforeAll(async () => {
  db = await createTestDatabase('pglite');
  app = await serve(
    db,
    { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false },
    createLogger('error', () => {}),
  );
  token = (await principalWithToken(db, 'admin', { isAdmin: true })).token;
});

afterAll(async () => {
  await app?.close();
  await db?.dispose();
});

it('refuses an empty name or resourceType as createBlueprint does, and changes nothing', async () => {
  const created = await call<{ createBlueprint: { blueprint: { id: string; databaseId: number } } }>(
    `mutation { createBlueprint(input: { name: "named", implementation: "host-pool",
      config: { services: [{ name: "build", bindings: [{ name: "a", address: "10.0.0.1", port: 22 }] }] } }) {
      ... on BlueprintPayload { blueprint { id databaseId } } } }`,
  );
  const { id, databaseId } = created.createBlueprint.blueprint;
  const logs = () => db.prisma.log.count({ where: { blueprintId: databaseId, type: 'blueprint-updated' } });
  for (const input of [{ name: '' }, { name: '   ' }, { resourceType: '' }]) {
    const field = Object.keys(input)[0]!;
    expect(await update(id, input)).toMatchObject({ __typename: 'ValidationError', path: [field] });
  }
  expect(await db.prisma.blueprint.findUniqueOrThrow({ where: { id: databaseId } })).toMatchObject({
    name: 'named',
    resourceType: 'host',
  });
  expect(await logs()).toBe(0);
});

it('changes resourceType only once none of its resources is left', async () => {
  const created = await call<{ createBlueprint: { blueprint: { id: string; databaseId: number } } }>(
    `mutation { createBlueprint(input: { name: "typed", implementation: "host-pool",
      config: { services: [{ name: "build", bindings: [{ name: "b", address: "10.0.0.2", port: 22 }] }] } }) {
      ... on BlueprintPayload { blueprint { id databaseId } } } }`,
  );
  const { id, databaseId } = created.createBlueprint.blueprint;
  const requested = await call<{ requestLease: { leases: { databaseId: number }[] } }>(
    `mutation ($blueprint: ID!) { requestLease(input: { resourceType: "host", blueprintIds: [$blueprint] }) {
      ... on RequestLeasePayload { leases { databaseId } } } }`,
    { blueprint: id },
  );
  const leaseId = requested.requestLease.leases[0]!.databaseId;
  await expect
    .poll(async () => (await db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } })).status, { timeout: 15_000 })
    .toBe('ACTIVE');
  const { resourceId } = await db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } });

  const refused = await update(id, { resourceType: 'machine' });
  expect(refused).toMatchObject({ __typename: 'ConflictError' });
  expect(refused.message).toContain(`blueprint ${databaseId} has 1 resources of type host not yet destroyed`);
  expect(await db.prisma.blueprint.findUniqueOrThrow({ where: { id: databaseId } })).toMatchObject({
    resourceType: 'host',
  });
  // The same type, or other fields, are no change of type.
  expect(await update(id, { resourceType: 'host', name: 'typed-renamed' })).toMatchObject({
    __typename: 'BlueprintPayload',
    blueprint: { name: 'typed-renamed', resourceType: 'host' },
  });

  const resourceGid = Buffer.from(`Resource:${resourceId}`).toString('base64');
  await call(`mutation ($id: ID!) { releaseResource(id: $id) { __typename } }`, { id: resourceGid });
  await expect
    .poll(async () => (await db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId! } })).status, {
      timeout: 15_000,
    })
    .toBe('DESTROYED');
  expect(await update(id, { resourceType: 'machine' })).toMatchObject({
    __typename: 'BlueprintPayload',
    blueprint: { resourceType: 'machine' },
  });
});
