// A connection cursor is a position in id order, not a row: as bob, a cursor of one of alice's rows
// or of an id no row has pages from that position among bob's own rows, exactly as bob's own
// cursor at the same position would. It used to name a row Prisma looked up in the whole table:
// alice's cursor skipped one of bob's rows and a missing id emptied the page, which told bob which
// ids exist. A cursor that is not one of ours is the caller's error, and nothing the server logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';

let db: TestDatabase;
let app: App;
let bobToken = '';
const logLines: string[] = [];
const b64 = (text: string) => Buffer.from(text).toString('base64');
const gid = (type: string, id: number) => b64(`${type}:${id}`);

interface Page {
  edges: { cursor: string }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}
type PageArgs = { after?: string; before?: string; first?: number; last?: number };

/** Every connection field, with how to reach it as bob and what all its rows are. */
interface Connection {
  name: string;
  /** The cursor of an id of this list: `GPC:N:` for Int ids, `GPC:I:` for the BigInt ids of logs. */
  cursor: (id: number) => string;
  query: (page: string) => string;
  variables: () => Record<string, unknown>;
  read: (data: Record<string, unknown>) => Page | undefined;
  allIds: () => Promise<number[]>;
}

const ids = { r1: 0, bp1: 0, deletedLease: 0 };
const PAGE = 'edges { cursor } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }';
const ARGS = '$after: String, $before: String, $first: Int, $last: Int';
const PAGING = 'after: $after, before: $before, first: $first, last: $last';
const intCursor = (id: number) => b64(`GPC:N:${id}`);

const topLevel = (field: string, allIds: () => Promise<number[]>, cursor = intCursor): Connection => ({
  name: field,
  cursor,
  query: (page) => `query (${ARGS}) { ${field}(${PAGING}) { ${page} } }`,
  variables: () => ({}),
  read: (data) => data[field] as Page | undefined,
  allIds,
});

const connections: Connection[] = [
  topLevel('leases', async () => (await db.prisma.lease.findMany()).map((row) => row.id)),
  topLevel(
    'logs',
    async () => (await db.prisma.log.findMany()).map((row) => Number(row.id)),
    (id) => b64(`GPC:I:${id}`),
  ),
  topLevel('resources', async () => (await db.prisma.resource.findMany()).map((row) => row.id)),
  topLevel('blueprints', async () => (await db.prisma.blueprint.findMany()).map((row) => row.id)),
  topLevel('authorizations', async () => (await db.prisma.authorization.findMany()).map((row) => row.id)),
  {
    name: 'Resource.leases',
    cursor: intCursor,
    query: (page) => `query ($id: ID!, ${ARGS}) { resource(id: $id) { leases(${PAGING}) { ${page} } } }`,
    variables: () => ({ id: gid('Resource', ids.r1) }),
    read: (data) => (data['resource'] as { leases: Page } | null)?.leases,
    allIds: async () => (await db.prisma.lease.findMany({ where: { resourceId: ids.r1 } })).map((row) => row.id),
  },
  {
    name: 'Blueprint.resources',
    cursor: intCursor,
    query: (page) => `query ($id: ID!, ${ARGS}) { blueprint(id: $id) { resources(${PAGING}) { ${page} } } }`,
    variables: () => ({ id: gid('Blueprint', ids.bp1) }),
    read: (data) => (data['blueprint'] as { resources: Page } | null)?.resources,
    allIds: async () => (await db.prisma.resource.findMany({ where: { blueprintId: ids.bp1 } })).map((row) => row.id),
  },
];

async function request(connection: Connection, args: PageArgs) {
  const { status, body } = await graphqlRequest<Record<string, unknown>>(
    app.graphqlUrl,
    connection.query(PAGE),
    { ...connection.variables(), ...args },
    { authorization: `Bearer ${bobToken}` },
  );
  return { status, body, page: body.data ? connection.read(body.data) : undefined };
}

async function page(connection: Connection, args: PageArgs): Promise<Page> {
  const { body, page } = await request(connection, args);
  expect(body.errors).toBeUndefined();
  expect(page).toBeDefined();
  return page!;
}

/** The position an edge cursor stands for. */
const idOf = (cursor: string) => Number(/^GPC:[NI]:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString())![1]);
const idsOf = (result: Page) => result.edges.map((edge) => idOf(edge.cursor));

/** Bob's rows of a connection, read with no cursor at all. */
const visibleIds = async (connection: Connection) => idsOf(await page(connection, { first: 100 }));

beforeAll(async () => {
  db = await createTestDatabase('pglite');
  app = await serve(
    db,
    { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0, allowLocalAnonymous: false },
    createLogger('error', (line) => logLines.push(line)),
  );
  const alice = (await principalWithToken(db, 'alice')).principal;
  const bob = await principalWithToken(db, 'bob');
  bobToken = bob.token;

  // Bob sees bp1 (he holds its resources) and bp3 (he asked to use it), not bp2.
  const blueprint = (name: string) =>
    db.prisma.blueprint.create({ data: { name, implementation: 'host-pool', resourceType: 'host' } });
  const bp1 = await blueprint('bp1');
  const bp2 = await blueprint('bp2');
  const bp3 = await blueprint('bp3');
  for (const [blueprintId, principalId] of [
    [bp2.id, alice.id],
    [bp3.id, bob.principal.id],
    [bp1.id, alice.id],
    [bp1.id, bob.principal.id],
  ] as const) {
    await db.prisma.authorization.create({ data: { blueprintId, principalId } });
  }

  // Bob's live leases hold r1 and r3; r2 holds only alice's.
  const resource = (name: string) =>
    db.prisma.resource.create({ data: { blueprintId: bp1.id, type: 'host', name, status: 'ACTIVE' } });
  const r1 = await resource('r1');
  const r2 = await resource('r2');
  const r3 = await resource('r3');
  Object.assign(ids, { r1: r1.id, bp1: bp1.id });

  // Alice's and bob's leases interleaved, as the review found them: alice's first, then bob's.
  const owners = ['alice', 'alice', 'alice', 'bob', 'bob', 'bob', 'alice', 'bob', 'deleted', 'bob'] as const;
  const onResource = [r1, r1, r1, r1, r1, r1, r2, r3, r1, r1];
  for (const [index, owner] of owners.entries()) {
    const lease = await db.prisma.lease.create({
      data: {
        resourceType: 'host',
        status: 'ACTIVE',
        ownerId: owner === 'bob' ? bob.principal.id : alice.id,
        resourceId: onResource[index]!.id,
      },
    });
    if (owner === 'deleted') {
      ids.deletedLease = lease.id;
      await db.prisma.lease.delete({ where: { id: lease.id } });
    } else {
      await db.prisma.log.create({ data: { type: 'lease-activated', leaseId: lease.id, resourceId: r1.id } });
    }
  }
});

afterAll(async () => {
  await app?.close();
  await db?.dispose();
});

describe('a cursor of a row the caller cannot see, or of no row, is a position', () => {
  it('leases: neither skips the caller’s rows nor tells whether the row exists', async () => {
    const leases = connections[0]!;
    const [first, second, third, fourth] = [4, 5, 6, 8].map(intCursor) as [string, string, string, string];
    expect(await visibleIds(leases)).toEqual([4, 5, 6, 8, 10]);
    expect(ids.deletedLease).toBe(9);

    // Alice's lease 3 is right before bob's 4: the page starts at 4, it used to skip it.
    expect(idsOf(await page(leases, { after: intCursor(3), first: 1 }))).toEqual([4]);
    expect(idsOf(await page(leases, { after: intCursor(2), first: 5 }))).toEqual([4, 5, 6, 8, 10]);
    // The same page, cursors and pageInfo as bob's own cursor at the same position.
    const same = async (foreign: PageArgs, own: PageArgs) =>
      expect(await page(leases, foreign)).toEqual(await page(leases, own));
    await same({ after: intCursor(7), first: 2 }, { after: third, first: 2 });
    await same({ after: intCursor(9), first: 5 }, { after: fourth, first: 5 });
    await same({ after: intCursor(50), first: 5 }, { after: intCursor(10), first: 5 });
    await same({ before: intCursor(7), last: 2 }, { before: fourth, last: 2 });
    await same({ before: intCursor(9), last: 2 }, { before: intCursor(10), last: 2 });
    expect(idsOf(await page(leases, { before: intCursor(4), last: 5 }))).toEqual([]);
    expect(idsOf(await page(leases, { before: second, last: 5 }))).toEqual([4]);
    expect(idsOf(await page(leases, { after: first, first: 1 }))).toEqual([5]);
  });

  it.each(connections.map((connection) => [connection.name, connection] as const))(
    '%s: after and before page from the position among the caller’s rows',
    async (_name, connection) => {
      const visible = await visibleIds(connection);
      const all = await connection.allIds();
      const hidden = all.filter((id) => !visible.includes(id));
      expect(visible.length).toBeGreaterThan(0);
      expect(hidden.length).toBeGreaterThan(0);
      const top = Math.max(...all);
      for (const position of [...hidden, 0, ids.deletedLease, top + 1, top + 1_000]) {
        const cursor = connection.cursor(position);
        const after = await page(connection, { after: cursor, first: 2 });
        expect(idsOf(after), `after ${position}`).toEqual(visible.filter((id) => id > position).slice(0, 2));
        const before = await page(connection, { before: cursor, last: 2 });
        expect(idsOf(before), `before ${position}`).toEqual(visible.filter((id) => id < position).slice(-2));
      }
    },
  );
});

describe('paging through the caller’s rows', () => {
  it.each(connections.map((connection) => [connection.name, connection] as const))(
    '%s: forwards and backwards, every row once, with pageInfo saying whether there is more',
    async (_name, connection) => {
      const visible = await visibleIds(connection);

      const forward: number[] = [];
      let after: string | undefined;
      for (let index = 0; ; index++) {
        const result = await page(connection, { first: 2, ...(after ? { after } : {}) });
        forward.push(...idsOf(result));
        expect(result.pageInfo.hasPreviousPage).toBe(index > 0);
        expect(result.pageInfo.hasNextPage).toBe(forward.length < visible.length);
        expect(result.pageInfo.endCursor).toBe(result.edges.at(-1)?.cursor ?? null);
        if (!result.pageInfo.hasNextPage) break;
        after = result.pageInfo.endCursor!;
      }
      expect(forward).toEqual(visible);

      const backward: number[] = [];
      let before: string | undefined;
      for (let index = 0; ; index++) {
        const result = await page(connection, { last: 2, ...(before ? { before } : {}) });
        backward.unshift(...idsOf(result));
        expect(result.pageInfo.hasNextPage).toBe(index > 0);
        expect(result.pageInfo.hasPreviousPage).toBe(backward.length < visible.length);
        expect(result.pageInfo.startCursor).toBe(result.edges[0]?.cursor ?? null);
        if (!result.pageInfo.hasPreviousPage) break;
        before = result.pageInfo.startCursor!;
      }
      expect(backward).toEqual(visible);
    },
  );
});

describe('a cursor that is not one of this list’s is a typed error, and nothing in the server log', () => {
  const malformed = [
    ['a string id', b64('GPC:S:abc')],
    ['a number past any id', b64('GPC:N:99999999999999999999')],
    ['a bigint past any id', b64('GPC:I:99999999999999999999')],
    ['a legacy compound cursor', b64('GPC:J:{}')],
    ['a fraction', b64('GPC:N:1.5')],
    ['a negative id', b64('GPC:N:-1')],
    ['a cursor of another plugin', b64('DC:N:1')],
    ['a global id', gid('Lease', 1)],
    ['not base64 at all', '%%%'],
    ['the empty string', ''],
  ] as const;
  const cases = connections.flatMap((connection) =>
    malformed.map(([what, cursor]) => [connection.name, what, connection, cursor] as const),
  );

  it.each(cases)('%s: %s', async (_name, _what, connection, cursor) => {
    for (const args of [
      { after: cursor, first: 1 },
      { before: cursor, last: 1 },
    ]) {
      const { status, body } = await request(connection, args);
      expect(status).toBe(200);
      expect(body.errors).toEqual([
        expect.objectContaining({
          message: expect.stringMatching(/is not a cursor of this list/) as unknown,
          extensions: { code: 'BAD_USER_INPUT' },
        }),
      ]);
    }
  });

  it.each(connections.map((connection) => [connection.name, connection] as const))(
    '%s: a cursor of a list with the other kind of id is not one of this list',
    async (name, connection) => {
      const other = name === 'logs' ? intCursor(1) : b64('GPC:I:1');
      const { body } = await request(connection, { after: other });
      expect(body.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT' });
    },
  );

  it.each(connections.map((connection) => [connection.name, connection] as const))(
    '%s: first and last together are refused rather than read one way or the other',
    async (_name, connection) => {
      const { body } = await request(connection, { first: 1, last: 1 });
      expect(body.errors).toEqual([
        expect.objectContaining({
          message: expect.stringMatching(/first and last cannot be used together/) as unknown,
          extensions: { code: 'BAD_USER_INPUT' },
        }),
      ]);
    },
  );

  it('none of them was logged as a server error', () => {
    expect(logLines.filter((line) => (JSON.parse(line) as { level?: string }).level === 'error')).toEqual([]);
  });
});
