// Input that would reach the database or a deep recursion is checked first: a typed error, and
// nothing stored. Each case counts the rows before and after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { wsClient } from './support/ws.js';

let db: TestDatabase;
let app: App;
let token = '';
type GraphQLErrorShape = { message: string; extensions?: Record<string, unknown> };
const b64 = (text: string) => Buffer.from(text).toString('base64');

async function call(query: string, variables: Record<string, unknown> = {}) {
  return graphqlRequest<Record<string, { __typename?: string; message?: string; path?: string[] } | null>>(
    app.graphqlUrl,
    query,
    variables,
    { authorization: `Bearer ${token}` },
  );
}

/** The counts of every table a bad request could have written to. */
const rows = async () => ({
  leases: await db.prisma.lease.count(),
  logs: await db.prisma.log.count(),
  jobs: await db.prisma.job.count(),
  blueprints: await db.prisma.blueprint.count(),
  tokens: await db.prisma.apiToken.count(),
});

beforeAll(async () => {
  db = await createTestDatabase('pglite');
  const config = {
    ...loadConfig({
      LEASE_ATTRIBUTES_MAX_KEYS: '50',
      LEASE_ATTRIBUTE_VALUE_MAX_LENGTH: '100',
      LEASE_ATTRIBUTES_MAX_BYTES: '2000',
    }),
    port: 0,
    shutdownTimeoutMs: 2_000,
    allowLocalAnonymous: false,
  };
  app = await serve(
    db,
    config,
    createLogger('error', () => {}),
  );
  token = (await principalWithToken(db, 'admin', { isAdmin: true })).token;
});

afterAll(async () => {
  await app?.close();
  await db?.dispose();
});

describe('global ids that are malformed or out of range', () => {
  const ids = ['Lease:-1', 'Lease:99999999999999999999', 'Lease:7e3', 'Lease:1.5'].map(b64);
  // Not base64 of "Type:id" at all, an id that is not a number, a type that does not exist: none
  // of them can name a lease, so each finds nothing, like an id of a lease you may not see. (An id
  // of another type is refused instead: test/api-reasons-and-ids.test.ts.)
  const malformed = ['x', '', '%%%', 'TGVhc2U6', b64('Lease:abc'), b64('Nope:1'), b64('Lease')];

  it.each([...ids, ...malformed])('%s: lease and node find nothing; releaseLease is a NotFoundError', async (id) => {
    const before = await rows();
    const read = await call(
      'query ($id: ID!) { lease(id: $id) { id } node(id: $id) { id } nodes(ids: [$id]) { id } }',
      {
        id,
      },
    );
    expect(read.body).toEqual({ data: { lease: null, node: null, nodes: [null] } });
    const release = await call('mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id });
    expect(release.body).toEqual({ data: { releaseLease: { __typename: 'NotFoundError' } } });
    expect(await rows()).toEqual(before);
  });

  it.each(malformed)('%s: other lookups and filters by id find nothing, without an error', async (id) => {
    const read = await call(
      `query ($id: ID!) {
        resource(id: $id) { id }
        blueprint(id: $id) { id }
        leases(filter: { blueprintId: $id, ownerId: $id }) { edges { cursor } }
        resources(filter: { blueprintId: $id }) { edges { cursor } }
        logs(leaseId: $id) { edges { cursor } }
        mixed: nodes(ids: [$id, $id]) { id }
      }`,
      { id },
    );
    expect(read.body).toEqual({
      data: {
        resource: null,
        blueprint: null,
        leases: { edges: [] },
        resources: { edges: [] },
        logs: { edges: [] },
        mixed: [null, null],
      },
    });
  });

  it.each(malformed)('%s: a mutation by id answers a NotFoundError, or a ValidationError on that field', async (id) => {
    const before = await rows();
    const heartbeat = await call('mutation ($id: ID!) { heartbeatLease(id: $id) { __typename } }', { id });
    expect(heartbeat.body).toEqual({ data: { heartbeatLease: { __typename: 'NotFoundError' } } });
    const request = await call(
      'mutation ($id: ID!) { requestLease(input: { resourceType: "host", blueprintIds: [$id] }) { __typename ... on ValidationError { path } } }',
      { id },
    );
    expect(request.body).toEqual({
      data: { requestLease: { __typename: 'ValidationError', path: ['blueprintIds', '0'] } },
    });
    expect(await rows()).toEqual(before);
  });
});

describe('NUL characters', () => {
  it('are refused in variables and in literals, over HTTP and graphql-ws', async () => {
    const before = await rows();
    const viaVariable = await call(
      'mutation ($t: String!) { requestLease(input: { resourceType: $t }) { __typename } }',
      { t: 'ho\u0000st' },
    );
    expect(viaVariable.body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    const viaLiteral = await call('mutation { requestLease(input: { resourceType: "ho\\u0000st" }) { __typename } }');
    expect(viaLiteral.body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    const inKey = await call(
      'mutation ($a: JSON) { requestLease(input: { resourceType: "host", attributes: $a }) { __typename } }',
      { a: { 'k\u0000': 'v' } },
    );
    expect(inKey.body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    const client = wsClient(app.graphqlUrl, { token });
    try {
      const result = await new Promise<unknown>((resolve) => {
        client.subscribe(
          {
            query: 'mutation ($t: String!) { requestLease(input: { resourceType: $t }) { __typename } }',
            variables: { t: '\u0000' },
          },
          { next: resolve, error: resolve, complete: () => {} },
        );
      });
      expect(JSON.stringify(result)).toMatch(/NUL/);
    } finally {
      await client.dispose();
    }
    expect(await rows()).toEqual(before);
  });
});

describe('deeply nested variables', () => {
  // JSON.stringify itself recurses: build the body by hand, as a client in another language could.
  const deepBody = `{"query":"query ($f: LeaseFilter) { leases(filter: $f) { edges { cursor } } }","variables":{"f":{"attributes":${'{"a":'.repeat(40_000)}"x"${'}'.repeat(40_000)}}}}`;
  const postDeep = async (url: string) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: deepBody,
    });
    return { status: response.status, body: (await response.json()) as { errors?: GraphQLErrorShape[] } };
  };

  it('a 40,000-deep filter value is refused with a typed error, cheaply, before anything recurses over it', async () => {
    const before = await rows();
    // The server runs in this process: its CPU time, unlike the wall time, does not grow with the
    // machine's load. Parsing the body and the check walk cost milliseconds; a recursion over it
    // (what the check prevents) would not come back at all.
    const cpu = process.cpuUsage();
    const { status, body } = await postDeep(app.graphqlUrl);
    const used = process.cpuUsage(cpu);
    expect(status).toBeLessThan(500);
    expect(body.errors).toEqual([
      expect.objectContaining({
        message: 'Input is nested more than 32 levels deep.',
        extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) as unknown,
      }),
    ]);
    expect((used.user + used.system) / 1_000).toBeLessThan(3_000);
    expect(await rows()).toEqual(before);
  });

  it('without the input check the same request is a server fault: the check is what answers it', async () => {
    const unchecked = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, maxInputDepth: 1e9 },
      createLogger('error', () => {}),
    );
    try {
      const { body } = await postDeep(unchecked.graphqlUrl);
      expect(body.errors?.[0]?.extensions?.['code']).not.toBe('BAD_USER_INPUT');
      expect(JSON.stringify(body)).not.toMatch(/nested more than/);
      expect(JSON.stringify(body)).toMatch(/Unexpected error/);
    } finally {
      await unchecked.close();
    }
  });

  it('a value just inside the limit is accepted', async () => {
    let value: unknown = 'x';
    for (let i = 0; i < 25; i++) value = { a: value };
    const { body } = await call('query ($f: LeaseFilter) { leases(filter: $f) { edges { cursor } } }', {
      f: { attributes: value },
    });
    expect(body.errors).toBeUndefined();
  });
});

describe('deeply nested literals', () => {
  const tooDeep = 'Input is nested more than 32 levels deep.';
  /** `levels` objects nested in one another, as a GraphQL literal and as the same JSON value. */
  const nested = (levels: number) => ({
    literal: `${'{ a: '.repeat(levels)}"x"${' }'.repeat(levels)}`,
    value: Array.from({ length: levels }).reduce<unknown>((inner) => ({ a: inner }), 'x'),
  });
  // The filter is at depth 1 and its attributes at 2: the innermost of n objects there is at n + 1.
  const filterQuery = (attributes: string) => `{ leases(filter: { attributes: ${attributes} }) { edges { cursor } } }`;
  const filterVariable = 'query ($f: LeaseFilter) { leases(filter: $f) { edges { cursor } } }';

  it('a literal nested 200 deep is refused with the variables’ error, and nothing is stored', async () => {
    const before = await rows();
    const list = `${'['.repeat(200)}1${']'.repeat(200)}`;
    const { body } = await call(
      `mutation { requestLease(input: { resourceType: "host", attributes: { k: ${list} } }) { __typename } }`,
    );
    expect(body.data).toBeUndefined();
    expect(body.errors).toEqual([
      expect.objectContaining({ message: tooDeep, extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }),
    ]);
    expect(await rows()).toEqual(before);
  });

  it('a literal, a variable and a default get the same answer: 31 levels in the attributes accepted, 32 refused', async () => {
    const answers = async (levels: number) => {
      const { literal, value } = nested(levels);
      const bodies = [
        (await call(filterQuery(literal))).body,
        (await call(filterVariable, { f: { attributes: value } })).body,
        (await call(`query ($f: LeaseFilter = { attributes: ${literal} }) { leases(filter: $f) { edges { cursor } } }`))
          .body,
      ];
      return bodies.map((body) => body.errors?.map((e) => [e.message, e.extensions?.['code']]) ?? body.data);
    };
    const accepted = { leases: { edges: [] } };
    expect(await answers(31)).toEqual([accepted, accepted, accepted]);
    const refusal = [[tooDeep, 'BAD_USER_INPUT']];
    expect(await answers(32)).toEqual([refusal, refusal, refusal]);
  });

  it('a variable inside a literal counts from its place there', async () => {
    // Three levels of literal, then the variable's value: 30 objects deep would end at 33.
    const query = 'query ($v: JSON) { leases(filter: { attributes: { a: { a: $v } } }) { edges { cursor } } }';
    const refused = await call(query, { v: nested(30).value });
    expect(refused.body.errors?.[0]).toMatchObject({ message: tooDeep, extensions: { code: 'BAD_USER_INPUT' } });
    const inside = await call(query, { v: nested(29).value });
    expect(inside.body).toEqual({ data: { leases: { edges: [] } } });
    // Its default likewise.
    const withDefault = await call(
      `query ($v: JSON = ${nested(30).literal}) { leases(filter: { attributes: { a: { a: $v } } }) { edges { cursor } } }`,
    );
    expect(withDefault.body.errors?.[0]).toMatchObject({ message: tooDeep, extensions: { code: 'BAD_USER_INPUT' } });
  });
});

describe('lone UTF-16 surrogates', () => {
  const request = 'mutation ($i: RequestLeaseInput!) { requestLease(input: $i) { __typename } }';
  const refused = (body: { errors?: GraphQLErrorShape[] }) => {
    expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(body.errors?.[0]?.message).toMatch(/surrogate/);
  };

  it.each([
    ['a high one in an attribute value', { resourceType: 'x', attributes: { k: '\ud800' } }],
    ['a low one in an attribute value', { resourceType: 'x', attributes: { k: 'a\udc00b' } }],
    ['one in an attribute key', { resourceType: 'x', attributes: { ['k\ud800']: 'v' } }],
    ['one deep in a value', { resourceType: 'x', attributes: { k: [{ j: ['\udbff'] }] } }],
    ['a pair reversed', { resourceType: 'x', attributes: { k: '\ude00\ud83d' } }],
    ['one in a string argument', { resourceType: 'x\ud800' }],
  ])('%s of a variable is refused as bad input, and nothing is stored', async (_name, input) => {
    const before = await rows();
    refused((await call(request, { i: input })).body);
    expect(await rows()).toEqual(before);
  });

  it('are refused over graphql-ws too; a literal cannot hold one (the parser refuses it); a pair is accepted', async () => {
    const before = await rows();
    const client = wsClient(app.graphqlUrl, { token });
    try {
      const result = await new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: request, variables: { i: { resourceType: 'x', attributes: { k: '\ud800' } } } },
          { next: resolve, error: resolve, complete: () => {} },
        );
      });
      refused(result as { errors?: GraphQLErrorShape[] });
    } finally {
      await client.dispose();
    }
    // Escaped or raw, a lone surrogate in a literal is a syntax error, never a write.
    for (const literal of ['"\\ud800"', '"\\udc00"', '"\\u{D800}"', '"\ud800"']) {
      const { status, body } = await call(
        `mutation { requestLease(input: { resourceType: "x", attributes: { k: ${literal} } }) { __typename } }`,
      );
      expect(status).toBeLessThan(500);
      expect(body.data).toBeUndefined();
      expect(body.errors?.[0]?.message).not.toMatch(/Unexpected error/);
    }
    expect(await rows()).toEqual(before);
    const pair = await call(request, { i: { resourceType: 'x', attributes: { 'k\ud83d\ude00': '\ud83d\ude00' } } });
    expect(pair.body.data?.['requestLease']?.__typename).toBe('RequestLeasePayload');
  });
});

describe('lease attribute limits (LEASE_ATTRIBUTES_* settings)', () => {
  const request =
    'mutation ($a: JSON) { requestLease(input: { resourceType: "host", attributes: $a }) { __typename ... on ValidationError { message path } } }';

  it.each([
    ['a 200,000-character value', { big: 'x'.repeat(200_000) }, ['attributes', 'big']],
    ['5,000 keys', Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, 'v'])), ['attributes']],
    ['a value past the configured length', { long: 'x'.repeat(101) }, ['attributes', 'long']],
    [
      'keys past the configured count',
      Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 1])),
      ['attributes'],
    ],
    [
      'a total past the configured size',
      Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, 'x'.repeat(90)])),
      ['attributes'],
    ],
  ])('%s is a ValidationError and stores nothing', async (_name, attributes, path) => {
    const before = await rows();
    const { body } = await call(request, { a: attributes });
    expect(body.data?.['requestLease']).toMatchObject({ __typename: 'ValidationError', path });
    expect(await rows()).toEqual(before);
  });

  it('attributes within the limits are accepted', async () => {
    const { body } = await call(request, { a: { small: 'x'.repeat(90) } });
    expect(body.data?.['requestLease']?.__typename).toBe('RequestLeasePayload');
  });
});

describe('numbers out of range', () => {
  it.each([
    [
      'a wait timeout of 0',
      'requestLease(input: { resourceType: "host", waitTimeoutSeconds: 0 })',
      ['waitTimeoutSeconds'],
      'waitTimeoutSeconds must be more than 0',
    ],
    [
      'a wait timeout past 30 days',
      'requestLease(input: { resourceType: "host", waitTimeoutSeconds: 99999999 })',
      ['waitTimeoutSeconds'],
      'waitTimeoutSeconds must be at most 2592000',
    ],
    [
      'a priority past 10',
      'requestLease(input: { resourceType: "host", priority: 11 })',
      ['priority'],
      'priority must be at most 10',
    ],
    [
      "a host's port past 65535",
      'createBlueprint(input: { name: "p", implementation: "host-pool", config: { services: [{ name: "s", bindings: [{ name: "b", address: "a", port: 70000 }] }] } })',
      ['config', 'services', '0', 'bindings', '0', 'port'],
      'services.0.bindings.0.port must be at most 65535',
    ],
  ])(
    '%s is refused in the words of the field and its bound, and stores nothing',
    async (_name, field, path, message) => {
      const before = await rows();
      const { body } = await call(
        `mutation { result: ${field} { __typename ... on ValidationError { message path } } }`,
      );
      expect(body.data?.['result']).toEqual({ __typename: 'ValidationError', message, path });
      expect(await rows()).toEqual(before);
    },
  );
});

it('a *Changed subscription with a filter that is not one is refused when it starts, not at its first event', async () => {
  const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${token}` });
  try {
    for (const query of [
      'subscription { leasesChanged(filter: { attributes: "linux" }) { id } }',
      'subscription { resourcesChanged(filter: { attributes: 5 }) { id } }',
    ]) {
      // Nothing changes meanwhile: an answer can only come from the subscription's start.
      const answer = new Promise<unknown>((resolve) => {
        client.subscribe({ query }, { next: (value) => resolve(value.errors), error: resolve, complete: () => {} });
      });
      const timeout = new Promise((resolve) => setTimeout(resolve, 5_000, 'no answer'));
      expect(await Promise.race([answer, timeout])).toEqual([
        expect.objectContaining({
          message: 'filter.attributes must be a JSON object, e.g. { platform: "linux" }',
          extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }),
        }),
      ]);
    }
  } finally {
    await client.dispose();
  }
});
