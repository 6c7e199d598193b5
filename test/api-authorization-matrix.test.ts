// Every mutation and subscription with no token, a revoked token, another principal's token and
// the right token. "Other" is whoever is not entitled: a non-admin for admin work, another owner
// for someone's lease, resource or token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { generateToken } from '../src/auth/tokens.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { sseSubscription } from './support/sse.js';
import { collect, wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});
type Who = 'admin' | 'alice' | 'bob' | 'revoked';

let db: TestDatabase;
let app: App;
const tokens = {} as Record<Who, string>;
const ids = {} as Record<string, string>;

async function principalWithToken(name: string, isAdmin: boolean, revoked = false) {
  const principal = await db.prisma.principal.create({ data: { name, kind: 'USER', isAdmin } });
  const { token, hash, prefix } = generateToken();
  const row = await db.prisma.apiToken.create({
    data: { principalId: principal.id, name, tokenHash: hash, prefix, ...(revoked ? { revokedAt: new Date() } : {}) },
  });
  return { principal, token, row };
}

const globalId = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');

async function call(who: Who | null, query: string, variables: Record<string, unknown> = {}) {
  return graphqlRequest<Record<string, { __typename: string }>>(
    app.graphqlUrl,
    query,
    variables,
    who ? { authorization: `Bearer ${tokens[who]}` } : {},
  );
}

/** The __typename of the mutation's result, or "401" when the request was refused outright. */
async function outcome(who: Who | null, query: string, variables?: Record<string, unknown>): Promise<string> {
  const { status, body } = await call(who, query, variables);
  if (status === 401) return '401';
  if (body.errors) return `error: ${body.errors[0]?.message}`;
  return Object.values(body.data ?? {})[0]?.__typename ?? 'none';
}

beforeAll(async () => {
  db = await createTestDatabase('pglite');
  app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
  const admin = await principalWithToken('admin', true);
  const alice = await principalWithToken('alice', false);
  const bob = await principalWithToken('bob', false);
  const revoked = await principalWithToken('mallory', false, true);
  Object.assign(tokens, { admin: admin.token, alice: alice.token, bob: bob.token, revoked: revoked.token });

  const blueprint = await call(
    'admin',
    `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
      config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) {
      __typename ... on BlueprintPayload { blueprint { id databaseId } } } }`,
  );
  const created = blueprint.body.data!['createBlueprint'] as unknown as {
    blueprint: { id: string; databaseId: number };
  };
  ids['blueprint'] = created.blueprint.id;
  const authorization = await db.prisma.authorization.create({
    data: { blueprintId: created.blueprint.databaseId, principalId: alice.principal.id, blueprintState: 'AUTHORIZED' },
  });
  ids['authorization'] = globalId('Authorization', authorization.id);
  const spare = generateToken();
  const spareRow = await db.prisma.apiToken.create({
    data: { principalId: alice.principal.id, name: 'spare', tokenHash: spare.hash, prefix: spare.prefix },
  });
  ids['aliceToken'] = globalId('ApiToken', spareRow.id);
  ids['alicePrincipal'] = globalId('Principal', alice.principal.id);

  const lease = await call(
    'alice',
    `mutation { requestLease(input: { resourceType: "host" }) { __typename ... on RequestLeasePayload { leases { id } } } }`,
  );
  ids['lease'] = (lease.body.data!['requestLease'] as unknown as { leases: { id: string }[] }).leases[0]!.id;
  const events = await sseSubscription<{ leaseEvents: { lease: { status: string; resource: { id: string } | null } } }>(
    app.graphqlUrl,
    'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { lease { status resource { id } } } }',
    { id: ids['lease'] },
    (items) => items.some((item) => item.leaseEvents.lease.status === 'ACTIVE'),
    { authorization: `Bearer ${tokens.alice}` },
  );
  ids['resource'] = events.at(-1)!.leaseEvents.lease.resource!.id;
});

afterAll(async () => {
  await app.close();
  await db.dispose();
});

// [name, operation, variables, other principal, success typename]; each runs with no token, a
// revoked token and the other principal's token before the right one, so a success cannot hide a
// refusal that should have come first.
const mutations: [string, string, () => Record<string, unknown>, Who, Who, string][] = [
  [
    'createBlueprint',
    `mutation { createBlueprint(input: { name: "more", implementation: "host-pool", config: { services: [{ name: "s", bindings: [{ name: "h2", address: "10.0.0.2", port: 22 }] }] } }) { __typename } }`,
    () => ({}),
    'alice',
    'admin',
    'BlueprintPayload',
  ],
  [
    'updateBlueprint',
    `mutation ($id: ID!) { updateBlueprint(id: $id, input: { resourceLimit: 5 }) { __typename } }`,
    () => ({ id: ids['blueprint'] }),
    'alice',
    'admin',
    'BlueprintPayload',
  ],
  [
    'setBlueprintDisabled',
    `mutation ($id: ID!) { setBlueprintDisabled(id: $id, disabled: false) { __typename } }`,
    () => ({ id: ids['blueprint'] }),
    'bob',
    'admin',
    'BlueprintPayload',
  ],
  [
    'requestBlueprintAuthorization',
    `mutation ($b: ID!, $p: ID) { requestBlueprintAuthorization(blueprintId: $b, principalId: $p) { __typename } }`,
    () => ({ b: ids['blueprint'], p: ids['alicePrincipal'] }),
    'bob',
    'alice',
    'AuthorizationPayload',
  ],
  [
    'setBlueprintAuthorization',
    `mutation ($id: ID!) { setBlueprintAuthorization(id: $id, state: AUTHORIZED) { __typename } }`,
    () => ({ id: ids['authorization'] }),
    'alice',
    'admin',
    'AuthorizationPayload',
  ],
  [
    'reclaimResources',
    `mutation { reclaimResources(resourceType: "nothing-of-this-type") { __typename } }`,
    () => ({}),
    'alice',
    'admin',
    'ReclaimResourcesPayload',
  ],
  [
    'createApiToken',
    `mutation { createApiToken(input: { name: "ci", principalName: "alice" }) { __typename } }`,
    () => ({}),
    'bob',
    'alice',
    'CreateApiTokenPayload',
  ],
  [
    'updateLease',
    `mutation ($id: ID!) { updateLease(id: $id) { __typename } }`,
    () => ({ id: ids['lease'] }),
    'alice',
    'admin',
    'LeasePayload',
  ],
  [
    'updateResource',
    `mutation ($id: ID!) { updateResource(id: $id) { __typename } }`,
    () => ({ id: ids['resource'] }),
    'alice',
    'admin',
    'ResourcePayload',
  ],
  [
    'releaseLease',
    `mutation ($id: ID!) { releaseLease(id: $id) { __typename } }`,
    () => ({ id: ids['lease'] }),
    'bob',
    'alice',
    'ReleaseLeasePayload',
  ],
  [
    'releaseResource',
    `mutation ($id: ID!) { releaseResource(id: $id) { __typename } }`,
    () => ({ id: ids['resource'] }),
    'alice',
    'admin',
    'ResourcePayload',
  ],
  [
    'revokeApiToken',
    `mutation ($id: ID!) { revokeApiToken(id: $id) { __typename } }`,
    () => ({ id: ids['aliceToken'] }),
    'bob',
    'alice',
    'RevokeApiTokenPayload',
  ],
];

describe('mutations', () => {
  it.each(mutations)('%s', async (_name, query, variables, other, right, success) => {
    expect(await outcome(null, query, variables())).toBe('401');
    expect(await outcome('revoked', query, variables())).toBe('401');
    expect(await outcome(other, query, variables())).toBe('NotAuthorizedError');
    expect(await outcome(right, query, variables())).toBe(success);
  });

  it('requestLease: refused without a valid token; any principal may ask', async () => {
    const query = 'mutation { requestLease(input: { resourceType: "host" }) { __typename } }';
    expect(await outcome(null, query)).toBe('401');
    expect(await outcome('revoked', query)).toBe('401');
    expect(await outcome('bob', query)).toBe('RequestLeasePayload');
  });
});

describe('queries', () => {
  it('show a non-admin only its own leases and the resources they hold', async () => {
    const query = '{ leases { edges { node { id } } } resources { edges { node { id } } } }';
    const aliceView = await call('alice', query);
    const bobView = await call('bob', query);
    const aliceLeases = (
      aliceView.body.data as unknown as { leases: { edges: { node: { id: string } }[] } }
    ).leases.edges.map((e) => e.node.id);
    const bobLeases = (
      bobView.body.data as unknown as { leases: { edges: { node: { id: string } }[] } }
    ).leases.edges.map((e) => e.node.id);
    expect(aliceLeases).toContain(ids['lease']);
    expect(bobLeases).not.toContain(ids['lease']);
    expect((await call('bob', 'query ($id: ID!) { lease(id: $id) { id } }', { id: ids['lease'] })).body.data).toEqual({
      lease: null,
    });
    expect((await call(null, query)).status).toBe(401);
  });
});

describe('subscriptions', () => {
  const leaseEvents = 'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor } }';
  const resourceEvents = 'subscription ($id: ID!) { resourceEvents(resourceId: $id, after: "0") { cursor } }';

  it.each([
    ['leaseEvents', leaseEvents, 'lease'],
    ['resourceEvents', resourceEvents, 'resource'],
  ])('%s over graphql-ws', async (_name, query, key) => {
    const run = async (params: Record<string, unknown> | undefined) => {
      const client = wsClient(app.graphqlUrl, params);
      try {
        return await collect<{ [k: string]: { cursor: string } }>(
          client,
          { query, variables: { id: ids[key] } },
          (items) => items.length > 0,
        ).done.then(
          (items) => `events: ${items.length > 0}`,
          (error: { code?: number; message?: string }) =>
            error.code ? `closed ${error.code}` : `error: ${error.message}`,
        );
      } finally {
        await client.dispose();
      }
    };
    expect(await run(undefined)).toBe('closed 4403');
    expect(await run({ token: tokens.revoked })).toBe('closed 4403');
    expect(await run({ token: tokens.bob })).toMatch(
      /^error: .*(belongs to someone else|not held by a lease of yours)/,
    );
    expect(await run({ token: tokens.alice })).toBe('events: true');
  });

  it("leasesChanged over graphql-ws shows another principal's changes only to admins", async () => {
    const bobClient = wsClient(app.graphqlUrl, { token: tokens.bob });
    const adminClient = wsClient(app.graphqlUrl, { token: tokens.admin });
    const query = 'subscription { leasesChanged { id } }';
    const bobSees = collect<{ leasesChanged: { id: string } }>(bobClient, { query });
    const adminSees = collect<{ leasesChanged: { id: string } }>(adminClient, { query }, (items) => items.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const requested = await call(
      'alice',
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const aliceLease = (requested.body.data!['requestLease'] as unknown as { leases: { id: string }[] }).leases[0]!.id;
    const seenByAdmin = await adminSees.done;
    expect(seenByAdmin.map((item) => item.leasesChanged.id)).toContain(aliceLease);
    const own = await call(
      'bob',
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const bobLease = (own.body.data!['requestLease'] as unknown as { leases: { id: string }[] }).leases[0]!.id;
    for (let i = 0; i < 50 && !bobSees.items.some((item) => item.leasesChanged.id === bobLease); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    bobSees.stop();
    const seenByBob = bobSees.items.map((item) => item.leasesChanged.id);
    expect(seenByBob).toContain(bobLease);
    expect(seenByBob).not.toContain(aliceLease);
    await bobClient.dispose();
    await adminClient.dispose();
  });

  it.each([
    ['leasesChanged', 'subscription { leasesChanged { id } }'],
    ['resourcesChanged', 'subscription { resourcesChanged { id } }'],
  ])('%s over SSE: refused without a valid token', async (_name, query) => {
    const variants: Record<string, string>[] = [{}, { authorization: `Bearer ${tokens.revoked}` }];
    for (const headers of variants) {
      const response = await fetch(app.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
        body: JSON.stringify({ query }),
      });
      const text = await response.text();
      expect(text).toMatch(/UNAUTHENTICATED|Not authenticated/);
    }
  });
});
