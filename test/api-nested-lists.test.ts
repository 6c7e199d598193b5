// A list of parents with a list under each (a resource's leases, a blueprint's resources, a lease's
// logs, ...) costs the same number of statements for 1 parent as for 100: the nested pages of all
// parents are read together. They read what one query per parent read: the same rows, the same
// page boundaries, and only what the access policy lets the caller see.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Actor } from '../src/access/actor.js';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import type { DatabaseKind } from '../src/db/database.js';
import { createTestDatabase, describeEachDatabase, describePostgres, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';

const PARENTS = 100;
const PER_BLUEPRINT = 2;
const PER_RESOURCE = 4;

interface Fixture {
  db: TestDatabase;
  app: App;
  tokens: { admin: string; alice: string };
  actors: { admin: Actor; alice: Actor };
}

/**
 * PARENTS blueprints with PER_BLUEPRINT resources each, PER_RESOURCE leases on each resource
 * (alice's and bob's in turn: alice sees her own, and the resources her live leases hold), two log
 * entries per lease, an authorization of alice on every blueprint.
 */
async function fixture(kind: DatabaseKind): Promise<Fixture> {
  const db = await createTestDatabase(kind);
  const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 };
  // The nested queries below weigh more than the default limit allows at 100 parents.
  const app = await serve(
    db,
    { ...config, allowLocalAnonymous: false, maxQueryCost: 10_000_000 },
    createLogger('error', () => {}),
  );
  const alice = await principalWithToken(db, 'alice');
  const bob = await principalWithToken(db, 'bob');
  const admin = await principalWithToken(db, 'admin', { isAdmin: true });
  await db.prisma.blueprint.createMany({
    data: Array.from({ length: PARENTS }, (_, b) => ({
      name: `pool-${b}`,
      implementation: 'host-pool',
      resourceType: 'host',
    })),
  });
  const blueprints = await db.prisma.blueprint.findMany({ orderBy: { id: 'asc' } });
  await db.prisma.authorization.createMany({
    data: blueprints.map((bp) => ({ blueprintId: bp.id, principalId: alice.principal.id })),
  });
  await db.prisma.resource.createMany({
    data: blueprints.flatMap((bp, b) =>
      Array.from({ length: PER_BLUEPRINT }, (_, r) => ({
        blueprintId: bp.id,
        type: 'host',
        name: `host-${b}-${r}`,
        status: 'ACTIVE' as const,
      })),
    ),
  });
  const resources = await db.prisma.resource.findMany({ orderBy: { id: 'asc' } });
  await db.prisma.lease.createMany({
    data: resources.flatMap((resource, r) =>
      Array.from({ length: PER_RESOURCE }, (_, l) => ({
        resourceType: 'host',
        resourceId: resource.id,
        ownerId: l % 2 === 0 ? alice.principal.id : bob.principal.id,
        // Every other resource is held by one of alice's live leases; the others are not hers to see.
        status: l % 2 === 0 && r % 2 === 0 ? ('ACTIVE' as const) : ('RELEASED' as const),
      })),
    ),
  });
  const leases = await db.prisma.lease.findMany({ orderBy: { id: 'asc' } });
  await db.prisma.log.createMany({
    data: leases.flatMap((lease) => [
      { type: 'lease-requested', leaseId: lease.id, resourceId: lease.resourceId },
      { type: 'lease-activated', leaseId: lease.id, resourceId: lease.resourceId },
    ]),
  });
  const actorOf = (principal: { id: number; name: string }, isAdmin: boolean): Actor => ({
    principalId: principal.id,
    name: principal.name,
    principalIsAdmin: isAdmin,
    scopes: isAdmin ? ['ADMIN'] : ['READ', 'LEASE'],
  });
  return {
    db,
    app,
    tokens: { admin: admin.token, alice: alice.token },
    actors: { admin: actorOf(admin.principal, true), alice: actorOf(alice.principal, false) },
  };
}

const PAGE_INFO = 'pageInfo { hasNextPage hasPreviousPage startCursor endCursor }';

/** Each nested list, under a page of `$n` parents. */
const nestedQueries: Record<string, string> = {
  'Resource.leases': `query ($n: Int!) { resources(first: $n) { edges { node { databaseId
    leases(first: 3) { edges { cursor node { databaseId status } } ${PAGE_INFO} } } } } }`,
  'Blueprint.resources': `query ($n: Int!) { blueprints(first: $n) { edges { node { databaseId
    resources(first: 1) { edges { cursor node { databaseId name } } ${PAGE_INFO} } } } } }`,
  'Lease.logs': `query ($n: Int!) { leases(first: $n) { edges { node { databaseId logs { type cursor } } } } }`,
  'Blueprint.authorizations': `query ($n: Int!) { blueprints(first: $n) { edges { node { databaseId
    authorizations { databaseId state } } } } }`,
  'Principal.tokens': `query ($n: Int!) { authorizations(first: $n) { edges { node { databaseId
    principal { name tokens { name } } } } } }`,
  'three levels': `query ($n: Int!) { blueprints(first: $n) { edges { node { databaseId
    resources(first: 2) { edges { node { databaseId leases(last: 2) { edges { node { databaseId
    logs { type } } } ${PAGE_INFO} } } } } } } } }`,
};

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describePostgres('statements per nested list', () => {
  let f: Fixture;
  let statements = 0;
  const realQuery = pg.Client.prototype.query;

  beforeAll(async () => {
    f = await fixture('postgresql');
    // Counts every SQL statement the server sends while a request runs.
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      statements++;
      return (realQuery as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof realQuery;
  });
  afterAll(async () => {
    pg.Client.prototype.query = realQuery;
    await f?.app.close();
    await f?.db.dispose();
  });

  async function statementsFor(who: 'admin' | 'alice', query: string, n: number): Promise<number> {
    await graphqlRequest(f.app.graphqlUrl, '{ viewer { name } }', {}, auth(f.tokens[who])); // warm the token up
    statements = 0;
    const { body } = await graphqlRequest(f.app.graphqlUrl, query, { n }, auth(f.tokens[who]));
    expect(body.errors).toBeUndefined();
    return statements;
  }

  for (const who of ['admin', 'alice'] as const) {
    for (const [field, query] of Object.entries(nestedQueries)) {
      it(`${field} as ${who}: as many statements for 100 parents as for 1`, async () => {
        const one = await statementsFor(who, query, 1);
        const hundred = await statementsFor(who, query, PARENTS);
        expect(hundred).toBe(one);
        expect(hundred).toBeLessThanOrEqual(12);
      });
    }
  }
});

describeEachDatabase('nested pages read together', (kind) => {
  let f: Fixture;

  beforeAll(async () => {
    f = await fixture(kind);
  });
  afterAll(async () => {
    await f?.app.close();
    await f?.db.dispose();
  });

  const cursorOf = (id: number) => Buffer.from(`GPC:N:${id}`).toString('base64');
  const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');

  type Page = {
    edges: { cursor: string; node: { databaseId: number } }[];
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  };
  const PAGE = `edges { cursor node { databaseId } } ${PAGE_INFO}`;

  const pagings = [
    { name: 'first', args: 'first: 2' },
    { name: 'first/after', args: 'first: 1, after: $cursor' },
    { name: 'last', args: 'last: 3' },
    { name: 'last/before', args: 'last: 1, before: $cursor' },
    { name: 'no size', args: '' },
  ];

  // GraphQL refuses a variable that is declared and not used.
  const usesCursor = (paging: { args: string }) => paging.args.includes('$cursor');
  const vars = (paging: { args: string }, ...others: string[]) => {
    const all = [...others, ...(usesCursor(paging) ? ['$cursor: String'] : [])];
    return all.length > 0 ? `(${all.join(', ')})` : '';
  };

  /**
   * A cursor amid the rows under the first page of parents (a lease of the 51st resource, a
   * resource of the 51st blueprint): pages after it and before it are both non-empty somewhere.
   */
  async function middleCursor(model: 'lease' | 'resource') {
    const page = { orderBy: { id: 'asc' }, select: { id: true } } as const;
    const rows = model === 'lease' ? await f.db.prisma.lease.findMany(page) : await f.db.prisma.resource.findMany(page);
    return cursorOf(rows[50 * (model === 'lease' ? PER_RESOURCE : PER_BLUEPRINT)]!.id);
  }

  // The reference for each parent's page is the top-level list filtered to that parent: one query
  // of its own per parent, as the nested lists read theirs before, with the same access filter.
  for (const who of ['admin', 'alice'] as const) {
    for (const paging of pagings) {
      const args = paging.args ? `(${paging.args})` : '';
      it(`Resource.leases (${paging.name}) as ${who}: each page as the resource's own query reads it`, async () => {
        const cursor = await middleCursor('lease');
        const { body } = await graphqlRequest<{
          resources: { edges: { node: { databaseId: number; leases: Page } }[] };
        }>(
          f.app.graphqlUrl,
          `query ${vars(paging)} { resources(first: 100) { edges { node { databaseId leases${args} { ${PAGE} } } } } }`,
          usesCursor(paging) ? { cursor } : {},
          auth(f.tokens[who]),
        );
        expect(body.errors).toBeUndefined();
        const resources = body.data!.resources.edges;
        expect(resources.length).toBeGreaterThan(1);
        let nonEmpty = 0;
        for (const { node } of resources) {
          const alone = await graphqlRequest<{ leases: Page }>(
            f.app.graphqlUrl,
            `query ${vars(paging, '$resourceId: ID!')} { leases(filter: { resourceId: $resourceId }${paging.args ? `, ${paging.args}` : ''}) { ${PAGE} } }`,
            { ...(usesCursor(paging) ? { cursor } : {}), resourceId: gid('Resource', node.databaseId) },
            auth(f.tokens[who]),
          );
          expect(alone.body.errors).toBeUndefined();
          expect(node.leases).toEqual(alone.body.data!.leases);
          if (node.leases.edges.length > 0) nonEmpty++;
        }
        expect(nonEmpty).toBeGreaterThan(0);
      });
    }

    it(`Blueprint.resources as ${who}: each page as the blueprint's own query reads it`, async () => {
      for (const paging of pagings) {
        const args = paging.args ? `(${paging.args})` : '';
        const cursor = await middleCursor('resource');
        const { body } = await graphqlRequest<{
          blueprints: { edges: { node: { databaseId: number; resources: Page } }[] };
        }>(
          f.app.graphqlUrl,
          `query ${vars(paging)} { blueprints(first: 100) { edges { node { databaseId resources${args} { ${PAGE} } } } } }`,
          usesCursor(paging) ? { cursor } : {},
          auth(f.tokens[who]),
        );
        expect(body.errors).toBeUndefined();
        const blueprints = body.data!.blueprints.edges;
        expect(blueprints).toHaveLength(PARENTS);
        for (const { node } of blueprints) {
          const alone = await graphqlRequest<{ resources: Page }>(
            f.app.graphqlUrl,
            `query ${vars(paging, '$blueprintId: ID!')} { resources(filter: { blueprintId: $blueprintId }${paging.args ? `, ${paging.args}` : ''}) { ${PAGE} } }`,
            { ...(usesCursor(paging) ? { cursor } : {}), blueprintId: gid('Blueprint', node.databaseId) },
            auth(f.tokens[who]),
          );
          expect(alone.body.errors).toBeUndefined();
          expect(node.resources, paging.name).toEqual(alone.body.data!.resources);
        }
      }
    });
  }

  it('alice sees only her own leases under the resources she holds, and fewer than an admin', async () => {
    const read = async (who: 'admin' | 'alice') =>
      (
        await graphqlRequest<{
          resources: { edges: { node: { leases: { edges: { node: { databaseId: number } }[] } } }[] };
        }>(
          f.app.graphqlUrl,
          '{ resources(first: 100) { edges { node { leases(first: 100) { edges { node { databaseId } } } } } } }',
          {},
          auth(f.tokens[who]),
        )
      ).body.data!.resources.edges.flatMap(({ node }) => node.leases.edges.map((edge) => edge.node.databaseId));
    const alices = await read('alice');
    const all = await read('admin');
    expect(all).toHaveLength(100 * PER_RESOURCE);
    const own = await f.db.prisma.lease.findMany({
      where: { ownerId: f.actors.alice.principalId, resource: { leases: { some: { status: 'ACTIVE' } } } },
      select: { id: true },
    });
    expect(alices.sort((a, b) => a - b)).toEqual(own.map((row) => row.id).sort((a, b) => a - b));
    expect(alices.length).toBeLessThan(all.length);
  });
});
