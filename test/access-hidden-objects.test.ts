import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';

// What a caller may not see does not exist for it, in mutations too: acting on a blueprint,
// resource, authorization, lease or token it cannot see is answered as for an id that names
// nothing, word for word, so that the answer does not confirm the object is there.

const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
const MISSING = 999_999;

describe('objects a caller may not see, in mutations', () => {
  let db: TestDatabase;
  let app: App;
  const tokens: Record<'admin' | 'alice' | 'carol', string> = { admin: '', alice: '', carol: '' };
  const ids = { blueprint: 0, resource: 0, authorization: 0, lease: 0, token: 0 };

  /** Every row a refused mutation could have changed, in id order. */
  const rows = () =>
    Promise.all([
      db.prisma.blueprint.findMany({ orderBy: { id: 'asc' } }),
      db.prisma.resource.findMany({ orderBy: { id: 'asc' } }),
      db.prisma.authorization.findMany({ orderBy: { id: 'asc' } }),
      db.prisma.lease.findMany({ orderBy: { id: 'asc' } }),
      db.prisma.apiToken.findMany({ select: { id: true, revokedAt: true }, orderBy: { id: 'asc' } }),
    ]);

  async function call(who: keyof typeof tokens, query: string, variables: Record<string, unknown> = {}) {
    const { body } = await graphqlRequest<Record<string, { __typename: string; message?: string }>>(
      app.graphqlUrl,
      query,
      variables,
      { authorization: `Bearer ${tokens[who]}` },
    );
    return Object.values(body.data ?? {})[0];
  }

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false },
      createLogger('error', () => {}),
    );
    const admin = await principalWithToken(db, 'admin', { isAdmin: true });
    const alice = await principalWithToken(db, 'alice');
    const carol = await principalWithToken(db, 'carol');
    Object.assign(tokens, { admin: admin.token, alice: alice.token, carol: carol.token });
    ids.token = alice.row.id;
    await call(
      'admin',
      `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) { __typename } }`,
    );
    ids.blueprint = (await db.prisma.blueprint.findFirstOrThrow()).id;
    // alice asks to lease from it, is authorized, and holds a lease on its host.
    await call('alice', 'mutation ($b: ID!) { requestBlueprintAuthorization(blueprintId: $b) { __typename } }', {
      b: gid('Blueprint', ids.blueprint),
    });
    ids.authorization = (await db.prisma.authorization.findFirstOrThrow()).id;
    await call(
      'admin',
      'mutation ($id: ID!) { setBlueprintAuthorization(id: $id, state: AUTHORIZED) { __typename } }',
      {
        id: gid('Authorization', ids.authorization),
      },
    );
    await call('alice', 'mutation { requestLease(input: { resourceType: "host" }) { __typename } }');
    const lease = await waitFor(() => db.prisma.lease.findFirst({ where: { status: 'ACTIVE' } }));
    ids.lease = lease.id;
    ids.resource = lease.resourceId!;
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it.each([
    ['updateBlueprint', 'Blueprint', 'blueprint', 'blueprint', 'updateBlueprint(id: $id, input: { resourceLimit: 5 })'],
    ['setBlueprintDisabled', 'Blueprint', 'blueprint', 'blueprint', 'setBlueprintDisabled(id: $id, disabled: true)'],
    ['drainResource', 'Resource', 'resource', 'resource', 'drainResource(id: $id)'],
    [
      'setBlueprintAuthorization',
      'Authorization',
      'authorization',
      'authorization',
      'setBlueprintAuthorization(id: $id, state: DECLINED)',
    ],
    ['releaseLease', 'Lease', 'lease', 'lease', 'releaseLease(id: $id)'],
    ['heartbeatLease', 'Lease', 'lease', 'lease', 'heartbeatLease(id: $id)'],
    ['revokeApiToken', 'ApiToken', 'token', 'token', 'revokeApiToken(id: $id)'],
  ] as const)(
    '%s on what carol cannot see answers as for nothing, and changes nothing',
    async (_name, type, key, entity, field) => {
      const query = `mutation ($id: ID!) { ${field} { __typename ... on Error { message } } }`;
      const before = await rows();
      const hidden = await call('carol', query, { id: gid(type, ids[key]) });
      const missing = await call('carol', query, { id: gid(type, MISSING) });
      expect(missing).toEqual({ __typename: 'NotFoundError', message: `${entity} ${MISSING} does not exist` });
      expect(hidden).toEqual({ __typename: 'NotFoundError', message: `${entity} ${ids[key]} does not exist` });
      expect(await rows()).toEqual(before);
    },
  );

  it('handing a lease to a principal: one answer whether it does not exist or may not take it', async () => {
    const transfer =
      'mutation ($id: ID!, $to: ID!) { transferLease(id: $id, toPrincipalId: $to) { __typename ... on Error { message } } }';
    // carol exists but may not lease from the blueprint; MISSING does not exist: alice learns neither.
    const carol = (await db.prisma.principal.findUniqueOrThrow({ where: { name: 'carol' } })).id;
    const [unauthorized, nobody] = await Promise.all([
      call('alice', transfer, { id: gid('Lease', ids.lease), to: gid('Principal', carol) }),
      call('alice', transfer, { id: gid('Lease', ids.lease), to: gid('Principal', MISSING) }),
    ]);
    const answer = (id: number) => ({
      __typename: 'ValidationError',
      message: `principal ${id} does not exist or may not take this lease`,
    });
    expect(unauthorized).toEqual(answer(carol));
    expect(nobody).toEqual(answer(MISSING));
    expect((await db.prisma.lease.findUniqueOrThrow({ where: { id: ids.lease } })).ownerId).not.toBe(carol);
  });
});
