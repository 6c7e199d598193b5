// A connection serves at most 100 rows a page. Asking for more is the caller's error, typed and
// saying what to do: it used to be served cut to 100 rows without a word, which a client that
// stops at a page shorter than it asked for took for the end of the list.
import { getNamedType, isObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { buildSchema } from '../src/schema/index.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';

const ROWS = 150;
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
const ARGS = '$first: Int, $last: Int';
const PAGING = 'first: $first, last: $last';
const PAGE = 'edges { cursor } pageInfo { hasNextPage hasPreviousPage }';

/** Every connection field of the schema, and a query reaching it. */
const connections: Record<string, (ids: { resource: number; blueprint: number }) => string> = {
  'Query.leases': () => `query (${ARGS}) { list: leases(${PAGING}) { ${PAGE} } }`,
  'Query.logs': () => `query (${ARGS}) { list: logs(${PAGING}) { ${PAGE} } }`,
  'Query.resources': () => `query (${ARGS}) { list: resources(${PAGING}) { ${PAGE} } }`,
  'Query.blueprints': () => `query (${ARGS}) { list: blueprints(${PAGING}) { ${PAGE} } }`,
  'Query.authorizations': () => `query (${ARGS}) { list: authorizations(${PAGING}) { ${PAGE} } }`,
  'Resource.leases': (ids) =>
    `query (${ARGS}) { parent: resource(id: "${gid('Resource', ids.resource)}") { list: leases(${PAGING}) { ${PAGE} } } }`,
  'Blueprint.resources': (ids) =>
    `query (${ARGS}) { parent: blueprint(id: "${gid('Blueprint', ids.blueprint)}") { list: resources(${PAGING}) { ${PAGE} } } }`,
};

describe('the page size of connections', () => {
  let db: TestDatabase;
  let app: App;
  const ids = { resource: 0, blueprint: 0 };
  const logLines: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 },
      createLogger('error', (line) => logLines.push(line)),
    );
    const blueprint = await db.prisma.blueprint.create({
      data: { name: 'pool', implementation: 'host-pool', resourceType: 'host' },
    });
    await db.prisma.resource.createMany({
      data: Array.from({ length: ROWS }, (_, i) => ({ blueprintId: blueprint.id, type: 'host', name: `h${i}` })),
    });
    const resource = (await db.prisma.resource.findFirst({ orderBy: { id: 'asc' } }))!;
    await db.prisma.lease.createMany({
      data: Array.from({ length: ROWS }, () => ({ resourceType: 'host', resourceId: resource.id })),
    });
    const leases = await db.prisma.lease.findMany({ select: { id: true } });
    await db.prisma.log.createMany({ data: leases.map((lease) => ({ type: 'lease-requested', leaseId: lease.id })) });
    await db.prisma.principal.createMany({
      data: Array.from({ length: ROWS }, (_, i) => ({ name: `p${i}`, kind: 'USER' as const })),
    });
    const principals = await db.prisma.principal.findMany({ where: { name: { startsWith: 'p' } } });
    await db.prisma.blueprint.createMany({
      data: Array.from({ length: ROWS }, (_, i) => ({
        name: `b${i}`,
        implementation: 'host-pool',
        resourceType: 'host',
      })),
    });
    await db.prisma.authorization.createMany({
      data: principals.map((principal) => ({ blueprintId: blueprint.id, principalId: principal.id })),
    });
    Object.assign(ids, { resource: resource.id, blueprint: blueprint.id });
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  async function list(field: string, args: { first?: number; last?: number }) {
    const { body } = await graphqlRequest<{
      list?: { edges: unknown[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean } };
      parent?: { list: { edges: unknown[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean } } };
    }>(app.graphqlUrl, connections[field]!(ids), args);
    return { errors: body.errors, page: body.data?.list ?? body.data?.parent?.list };
  }

  it('covers every connection field of the schema', () => {
    const schema = buildSchema();
    const found = Object.values(schema.getTypeMap())
      .filter(isObjectType)
      .flatMap((type) =>
        Object.values(type.getFields())
          .filter((field) => getNamedType(field.type).name.endsWith('Connection'))
          .map((field) => `${type.name}.${field.name}`),
      );
    expect(found.sort()).toEqual(Object.keys(connections).sort());
  });

  for (const field of Object.keys(connections)) {
    it(`${field}: 100 rows a page at most, more are refused with a typed error`, async () => {
      const full = await list(field, { first: 100 });
      expect(full.errors).toBeUndefined();
      expect(full.page!.edges).toHaveLength(100);
      expect(full.page!.pageInfo.hasNextPage).toBe(true);
      const last = await list(field, { last: 100 });
      expect(last.errors).toBeUndefined();
      expect(last.page!.edges).toHaveLength(100);

      for (const [argument, hint] of [
        ['first', "passing pageInfo's endCursor as after"],
        ['last', "passing pageInfo's startCursor as before"],
      ] as const) {
        for (const size of [101, 500]) {
          const refused = await list(field, { [argument]: size });
          expect(refused.errors).toEqual([
            expect.objectContaining({
              message: `${argument} must be at most 100: read a longer list page by page, ${hint}.`,
              extensions: { code: 'BAD_USER_INPUT' },
            }),
          ]);
        }
      }
    });
  }

  it('none of the refusals was logged as a server error', () => {
    expect(logLines.filter((line) => (JSON.parse(line) as { level?: string }).level === 'error')).toEqual([]);
  });
});
