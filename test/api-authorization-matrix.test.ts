// Every mutation and subscription × every kind of caller: no token, an expired token, a revoked
// token, a READ-only token, a LEASE token, another principal, an admin. Alice owns the objects;
// "other" is bob, a non-admin with the same scopes as alice's LEASE token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { buildSchema } from '../src/schema/index.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken, tokenFor } from './support/tokens.js';
import { wsClient } from './support/ws.js';
import { waitFor } from './support/wait.js';

const quiet = createLogger('error', () => {});
const ROLES = ['none', 'expired', 'revoked', 'read', 'lease', 'other', 'admin'] as const;
type Role = (typeof ROLES)[number];

let db: TestDatabase;
let app: App;
const tokens = {} as Record<Exclude<Role, 'none'>, string>;
const ids = {} as Record<string, string>;
let alicePrincipal = { id: 0, name: 'alice', isAdmin: false };
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');

async function call(role: Role, query: string, variables: Record<string, unknown> = {}) {
  return graphqlRequest<Record<string, Record<string, unknown> & { __typename: string }>>(
    app.graphqlUrl,
    query,
    variables,
    role === 'none' ? {} : { authorization: `Bearer ${tokens[role]}` },
  );
}

/** The __typename of the mutation's result, or "401" when the request was refused outright. */
async function outcome(role: Role, query: string, variables?: Record<string, unknown>): Promise<string> {
  const { status, body } = await call(role, query, variables);
  if (status === 401) return '401';
  if (body.errors) return `error: ${body.errors[0]?.message}`;
  return Object.values(body.data ?? {})[0]?.__typename ?? 'none';
}

async function aliceLease(): Promise<string> {
  const { body } = await call(
    'lease',
    'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
  );
  return (body.data!['requestLease'] as unknown as { leases: { id: string }[] }).leases[0]!.id;
}

/** A lease of alice's that holds its resource (a hand-off needs one). */
async function aliceActiveLease(): Promise<string> {
  const id = await aliceLease();
  const leaseId = Number(Buffer.from(id, 'base64').toString().split(':')[1]);
  await waitFor(async () => (await db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } })).status === 'ACTIVE');
  return id;
}

async function spareToken(): Promise<string> {
  return gid('ApiToken', (await tokenFor(db, alicePrincipal, { name: 'spare' })).row.id);
}

let counter = 0;

beforeAll(async () => {
  db = await createTestDatabase('pglite');
  app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
  const admin = await principalWithToken(db, 'admin', { isAdmin: true });
  const alice = await principalWithToken(db, 'alice', { scopes: ['READ', 'LEASE'] });
  const bob = await principalWithToken(db, 'bob');
  alicePrincipal = alice.principal;
  Object.assign(tokens, {
    admin: admin.token,
    lease: alice.token,
    read: (await tokenFor(db, alice.principal, { scopes: ['READ'] })).token,
    expired: (await tokenFor(db, alice.principal, { expired: true })).token,
    revoked: (await tokenFor(db, alice.principal, { revoked: true })).token,
    other: bob.token,
  });

  const created = await call(
    'admin',
    `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
      config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) {
      ... on BlueprintPayload { blueprint { id databaseId } } } }`,
  );
  const blueprint = created.body.data!['createBlueprint']!['blueprint'] as { id: string; databaseId: number };
  ids['blueprint'] = blueprint.id;
  for (const principalId of [alice.principal.id, bob.principal.id]) {
    const row = await db.prisma.authorization.create({
      data: { blueprintId: blueprint.databaseId, principalId, blueprintState: 'AUTHORIZED' },
    });
    if (principalId === alice.principal.id) ids['authorization'] = gid('Authorization', row.id);
  }
  ids['alicePrincipal'] = gid('Principal', alice.principal.id);
  ids['bobPrincipal'] = gid('Principal', bob.principal.id);
  const credential = await db.prisma.credential.create({ data: { name: 'key', kind: 'ssh-key', secret: 'x' } });
  ids['credential'] = gid('Credential', credential.id);

  ids['lease'] = await aliceLease();
  const leaseId = Number(Buffer.from(ids['lease'], 'base64').toString().split(':')[1]);
  const active = await waitFor(async () => {
    const lease = await db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } });
    return lease.status === 'ACTIVE' ? lease : null;
  });
  ids['resource'] = gid('Resource', active.resourceId!);
  // A lease that is over: commands on it are refused for its status, once the caller may act on it.
  const over = await aliceLease();
  await call('lease', 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id: over });
  ids['overLease'] = over;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await db?.dispose();
});

const NA = 'NotAuthorizedError';
/** What a caller gets for another's object it may not see: as for an id that names nothing. */
const NF = 'NotFoundError';
const REFUSED = { none: '401', expired: '401', revoked: '401' } as const;

// [name, operation, variables (asked afresh per caller), outcome for read, lease, other, admin]
type Row = [
  string,
  string,
  () => Promise<Record<string, unknown>> | Record<string, unknown>,
  [string, string, string, string],
];
const mutations: Row[] = [
  [
    'createBlueprint',
    `mutation ($name: String!) { createBlueprint(input: { name: $name, implementation: "host-pool", config: { services: [{ name: "s", bindings: [{ name: "h2", address: "10.0.0.2", port: 22 }] }] } }) { __typename } }`,
    () => ({ name: `more-${++counter}` }),
    [NA, NA, NA, 'BlueprintPayload'],
  ],
  [
    'updateBlueprint',
    `mutation ($id: ID!) { updateBlueprint(id: $id, input: { resourceLimit: 5 }) { __typename } }`,
    () => ({ id: ids['blueprint'] }),
    [NA, NA, NA, 'BlueprintPayload'],
  ],
  [
    'setBlueprintDisabled',
    `mutation ($id: ID!) { setBlueprintDisabled(id: $id, disabled: false) { __typename } }`,
    () => ({ id: ids['blueprint'] }),
    [NA, NA, NA, 'BlueprintPayload'],
  ],
  [
    'requestBlueprintAuthorization',
    `mutation ($b: ID!, $p: ID) { requestBlueprintAuthorization(blueprintId: $b, principalId: $p) { __typename } }`,
    () => ({ b: ids['blueprint'], p: ids['alicePrincipal'] }),
    [NA, 'AuthorizationPayload', NA, 'AuthorizationPayload'],
  ],
  [
    'setBlueprintAuthorization',
    `mutation ($id: ID!) { setBlueprintAuthorization(id: $id, state: AUTHORIZED) { __typename } }`,
    () => ({ id: ids['authorization'] }),
    [NA, NA, NF, 'AuthorizationPayload'],
  ],
  [
    'reclaimResources',
    `mutation { reclaimResources(resourceType: "nothing-of-this-type") { __typename } }`,
    () => ({}),
    [NA, NA, NA, 'ReclaimResourcesPayload'],
  ],
  [
    'createApiToken',
    `mutation { createApiToken(input: { name: "ci", principalName: "alice", scopes: [READ] }) { __typename } }`,
    () => ({}),
    [NA, 'CreateApiTokenPayload', NA, 'CreateApiTokenPayload'],
  ],
  [
    'revokeApiToken',
    `mutation ($id: ID!) { revokeApiToken(id: $id) { __typename } }`,
    async () => ({ id: await spareToken() }),
    [NA, 'RevokeApiTokenPayload', NF, 'RevokeApiTokenPayload'],
  ],
  [
    'requestLease',
    'mutation { requestLease(input: { resourceType: "host" }) { __typename } }',
    () => ({}),
    [NA, 'RequestLeasePayload', 'RequestLeasePayload', 'RequestLeasePayload'],
  ],
  [
    'requestGang',
    'mutation { requestGang(input: { parts: [{ resourceType: "host", count: 2 }] }) { __typename } }',
    () => ({}),
    [NA, 'RequestLeasePayload', 'RequestLeasePayload', 'RequestLeasePayload'],
  ],
  [
    'setPrincipalWeight',
    `mutation ($p: ID!) { setPrincipalWeight(principalId: $p, weight: 2) { __typename } }`,
    () => ({ p: ids['alicePrincipal'] }),
    [NA, NA, NA, 'PrincipalPayload'],
  ],
  [
    'setQuota',
    `mutation ($p: ID!) { setQuota(principalId: $p, resourceType: "host", maxLeases: 50) { __typename } }`,
    () => ({ p: ids['alicePrincipal'] }),
    [NA, NA, NA, 'QuotaPayload'],
  ],
  [
    'releaseLease',
    `mutation ($id: ID!) { releaseLease(id: $id) { __typename } }`,
    async () => ({ id: await aliceLease() }),
    [NA, 'ReleaseLeasePayload', NF, 'ReleaseLeasePayload'],
  ],
  [
    'heartbeatLease',
    `mutation ($id: ID!) { heartbeatLease(id: $id) { __typename } }`,
    () => ({ id: ids['lease'] }),
    // Only the holder itself can say it is alive: not even an admin.
    [NA, 'LeasePayload', NF, NA],
  ],
  [
    'transferLease',
    `mutation ($id: ID!, $to: ID!) { transferLease(id: $id, toPrincipalId: $to) { __typename } }`,
    async () => ({ id: await aliceActiveLease(), to: ids['bobPrincipal'] }),
    [NA, 'TransferLeasePayload', NF, 'TransferLeasePayload'],
  ],
  [
    'updateLease',
    `mutation ($id: ID!) { updateLease(id: $id) { __typename } }`,
    () => ({ id: ids['lease'] }),
    [NA, NA, NA, 'LeasePayload'],
  ],
  [
    'updateResource',
    `mutation ($id: ID!) { updateResource(id: $id) { __typename } }`,
    () => ({ id: ids['resource'] }),
    [NA, NA, NA, 'ResourcePayload'],
  ],
  [
    'createCredential',
    // Past the authorization check, a key that is not one is refused for what it is.
    `mutation { createCredential(input: { name: "k2", kind: SSH_KEY, secret: "not a key" }) { __typename } }`,
    () => ({}),
    [NA, NA, NA, 'ValidationError'],
  ],
  [
    'revokeCredential',
    `mutation ($id: ID!) { revokeCredential(id: $id) { __typename } }`,
    () => ({ id: ids['credential'] }),
    [NA, NA, NA, 'CredentialPayload'],
  ],
  [
    'drainResource',
    `mutation ($id: ID!) { drainResource(id: $id) { __typename } }`,
    () => ({ id: ids['resource'] }),
    [NA, NA, NA, 'ResourcePayload'],
  ],
  [
    'undrainResource',
    `mutation ($id: ID!) { undrainResource(id: $id) { __typename } }`,
    () => ({ id: ids['resource'] }),
    [NA, NA, NA, 'ResourcePayload'],
  ],
  [
    // Last: releasing the resource ends the leases the subscriptions below do not need any more.
    'releaseResource',
    `mutation ($id: ID!) { releaseResource(id: $id) { __typename } }`,
    () => ({ id: ids['resource'] }),
    [NA, NA, NA, 'ResourcePayload'],
  ],
];

/** How a graphql-ws subscription starts for a caller: its first event's type, an error, or a close. */
async function subscriptionOutcome(role: Role, query: string, variables: Record<string, unknown>) {
  const client = wsClient(app.graphqlUrl, role === 'none' ? undefined : { token: tokens[role] });
  try {
    return await new Promise<string>((resolve) => {
      client.subscribe(
        { query, variables },
        {
          next: (value) => {
            const first = Object.values(value.data ?? {})[0] as { __typename?: string } | undefined;
            resolve(value.errors ? `error: ${value.errors[0]?.message}` : (first?.__typename ?? 'none'));
          },
          error: (error: unknown) =>
            resolve(
              Array.isArray(error)
                ? `error: ${(error as { message: string }[])[0]?.message}`
                : `closed ${(error as { code?: number }).code}`,
            ),
          complete: () => resolve('complete'),
        },
      );
    });
  } finally {
    await client.dispose();
  }
}

describe('subscriptions', () => {
  const closed = { none: 'closed 4403', expired: 'closed 4403', revoked: 'closed 4403' };
  const cases: [string, string, () => Record<string, unknown>, Record<Role, string | RegExp>][] = [
    [
      'leaseEvents',
      'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { __typename } }',
      () => ({ id: ids['lease'] }),
      {
        ...closed,
        read: 'LeaseEvent',
        lease: 'LeaseEvent',
        other: /^error: lease \d+ does not exist/,
        admin: 'LeaseEvent',
      },
    ],
    [
      'resourceEvents',
      'subscription ($id: ID!) { resourceEvents(resourceId: $id, after: "0") { __typename } }',
      () => ({ id: ids['resource'] }),
      {
        ...closed,
        read: 'ResourceEvent',
        lease: 'ResourceEvent',
        other: /^error: resource \d+ does not exist/,
        admin: 'ResourceEvent',
      },
    ],
    [
      'runLeaseCommand',
      'subscription ($id: ID!) { runLeaseCommand(leaseId: $id, argv: ["true"]) { __typename } }',
      () => ({ id: ids['overLease'] }),
      // Allowed callers get as far as the lease's status: it is over.
      // Another's lease does not exist for bob.
      { ...closed, read: NA, lease: 'IllegalTransitionError', other: NF, admin: 'IllegalTransitionError' },
    ],
  ];

  it.each(cases)('%s × every caller', async (_name, query, variables, expected) => {
    for (const role of ROLES) {
      const got = await subscriptionOutcome(role, query, variables());
      const want = expected[role];
      if (typeof want === 'string') expect(got, role).toBe(want);
      else expect(got, role).toMatch(want);
    }
  });

  it("leasesChanged and resourcesChanged × every caller: refused without a valid token; another's changes only where the policy allows", async () => {
    for (const role of ['none', 'expired', 'revoked'] as const) {
      expect(await subscriptionOutcome(role, 'subscription { leasesChanged { id } }', {}), role).toBe('closed 4403');
      expect(await subscriptionOutcome(role, 'subscription { resourcesChanged { id } }', {}), role).toBe('closed 4403');
    }
    const live = (['read', 'lease', 'other', 'admin'] as const).map((role) => {
      const client = wsClient(app.graphqlUrl, { token: tokens[role] });
      const seen: string[] = [];
      const errors: unknown[] = [];
      client.subscribe<{ leasesChanged: { id: string } }>(
        { query: 'subscription { leasesChanged { id } }' },
        {
          next: (v) => (v.data ? seen.push(v.data.leasesChanged.id) : errors.push(v.errors)),
          error: (e) => errors.push(e),
          complete: () => {},
        },
      );
      client.subscribe(
        { query: 'subscription { resourcesChanged { id } }' },
        { next: (v) => v.errors && errors.push(v.errors), error: (e) => errors.push(e), complete: () => {} },
      );
      return { role, client, seen, errors };
    });
    try {
      // Alice's new leases show to her tokens and the admin, once the subscriptions listen.
      const watchers = live.filter((l) => l.role !== 'other');
      await waitFor(async () => {
        const id = await aliceLease();
        return waitFor(() => watchers.every((l) => l.seen.includes(id)) && id, 2_000).catch(() => false);
      }, 60_000);
      // Bob sees his own and nothing of alice's: his own change came after hers.
      const bob = live.find((l) => l.role === 'other')!;
      const { body } = await call(
        'other',
        'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
      );
      const own = (body.data!['requestLease'] as unknown as { leases: { id: string }[] }).leases[0]!.id;
      await waitFor(() => bob.seen.includes(own));
      const alices = new Set(live.find((l) => l.role === 'lease')!.seen);
      expect(bob.seen.filter((id) => alices.has(id))).toEqual([]);
      expect(live.flatMap((l) => l.errors)).toEqual([]);
    } finally {
      for (const l of live) await l.client.dispose();
    }
  }, 120_000);

  it.each([
    ['leasesChanged', 'subscription { leasesChanged { id } }'],
    ['resourcesChanged', 'subscription { resourcesChanged { id } }'],
  ])('%s over SSE: refused without a valid token', async (_name, query) => {
    for (const role of ['none', 'expired', 'revoked'] as const) {
      const response = await fetch(app.graphqlUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...(role === 'none' ? {} : { authorization: `Bearer ${tokens[role]}` }),
        },
        body: JSON.stringify({ query }),
      });
      expect(await response.text(), role).toMatch(/UNAUTHENTICATED|Not authenticated/);
    }
  });
});

describe('mutations', () => {
  it('the matrix has a row for every mutation of the schema', () => {
    const fields = Object.keys(buildSchema().getMutationType()?.getFields() ?? {}).sort();
    expect(mutations.map(([name]) => name).sort()).toEqual(fields);
  });

  it.each(mutations)('%s × every caller', async (_name, query, variables, [read, lease, other, admin]) => {
    const expected: Record<Role, string> = { ...REFUSED, read, lease, other, admin };
    // Refusals first, so that a success cannot hide a refusal that should have come before it.
    for (const role of ROLES) expect(await outcome(role, query, await variables()), role).toBe(expected[role]);
  });
});

describe('queries', () => {
  it('a READ token sees its own leases; another principal does not; no token is refused', async () => {
    const query = '{ leases { edges { node { id } } } }';
    const seen = async (role: Role) =>
      (
        (await call(role, query)).body.data as unknown as { leases: { edges: { node: { id: string } }[] } }
      ).leases.edges.map((e) => e.node.id);
    expect(await seen('read')).toContain(ids['lease']);
    expect(await seen('other')).not.toContain(ids['lease']);
    expect((await call('none', query)).status).toBe(401);
    expect((await call('expired', query)).status).toBe(401);
  });

  it('viewer shows the scopes of the token in use', async () => {
    const scopes = async (role: Role) =>
      ((await call(role, '{ viewer { tokenScopes } }')).body.data as unknown as { viewer: { tokenScopes: string[] } })
        .viewer.tokenScopes;
    expect(await scopes('read')).toEqual(['READ']);
    expect(await scopes('lease')).toEqual(['READ', 'LEASE']);
    expect(await scopes('admin')).toEqual(['ADMIN']);
  });
});
