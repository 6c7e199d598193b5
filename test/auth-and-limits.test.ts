import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve, type App } from '../src/app.js';
import { generateToken } from '../src/auth/tokens.js';
import { loadConfig, type Config } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});
const query = '{ leases { edges { node { id } } } }';

async function issueToken(db: TestDatabase, name: string, options: { revoked?: boolean; expired?: boolean } = {}) {
  const principal = await db.prisma.principal.create({ data: { name, kind: 'USER' } });
  const { token, hash, prefix } = generateToken();
  await db.prisma.apiToken.create({
    data: {
      principalId: principal.id,
      name: `${name}'s token`,
      tokenHash: hash,
      prefix,
      ...(options.revoked ? { revokedAt: new Date() } : {}),
      ...(options.expired ? { expiresAt: new Date(Date.now() - 1_000) } : {}),
    },
  });
  return token;
}

function wsResult(app: App, connectionParams: Record<string, unknown> | undefined) {
  const client = createClient({
    url: app.graphqlUrl.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    ...(connectionParams ? { connectionParams } : {}),
  });
  return new Promise<{ data?: unknown; closeCode?: number }>((resolve) => {
    let data: unknown;
    client.subscribe(
      { query },
      {
        next: (value) => (data = value),
        error: (error) => resolve({ closeCode: (error as { code?: number }).code ?? -1 }),
        complete: () => resolve({ data }),
      },
    );
  }).finally(() => client.dispose());
}

async function start(db: TestDatabase, overrides: Partial<Config>): Promise<App> {
  return serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 1_000, ...overrides }, quiet);
}

describe('authentication', () => {
  let db: TestDatabase;
  let open: App;
  let closed: App;
  let valid: string;
  let revoked: string;
  let expired: string;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    valid = await issueToken(db, 'alice');
    revoked = await issueToken(db, 'bob', { revoked: true });
    expired = await issueToken(db, 'carol', { expired: true });
    open = await start(db, {});
    closed = await start(db, { allowLocalAnonymous: false });
  });
  afterAll(async () => {
    await open.close();
    await closed.close();
    await db.dispose();
  });

  it('lets anonymous requests act as the local admin on a loopback-only server', async () => {
    const { status, body } = await graphqlRequest(open.graphqlUrl, query);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(await db.prisma.principal.findUnique({ where: { name: 'local-admin' } })).toMatchObject({ isAdmin: true });
  });

  it('refuses anonymous requests when local anonymity is off', async () => {
    const { status, body } = await graphqlRequest(closed.graphqlUrl, query);
    expect(status).toBe(401);
    expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
  });

  it('accepts a valid token and records when it was used', async () => {
    const { status } = await graphqlRequest(closed.graphqlUrl, query, {}, { authorization: `Bearer ${valid}` });
    expect(status).toBe(200);
    const token = await db.prisma.apiToken.findFirst({ where: { principal: { name: 'alice' } } });
    expect(token?.lastUsedAt).toBeInstanceOf(Date);
  });

  it.each([
    ['revoked', () => revoked, /revoked/],
    ['expired', () => expired, /expired/],
    ['unknown', () => generateToken().token, /unknown/],
  ])('refuses a %s token even where anonymous requests are allowed', async (_name, token, reason) => {
    const { status, body } = await graphqlRequest(open.graphqlUrl, query, {}, { authorization: `Bearer ${token()}` });
    expect(status).toBe(401);
    expect(body.errors?.[0]?.message).toMatch(reason);
  });

  it('authenticates graphql-ws connections from connectionParams', async () => {
    expect(await wsResult(closed, { authorization: `Bearer ${valid}` })).toEqual({
      data: { data: { leases: { edges: [] } } },
    });
    expect(await wsResult(closed, { token: valid })).toEqual({ data: { data: { leases: { edges: [] } } } });
    expect((await wsResult(closed, undefined)).closeCode).toBe(4403);
    expect((await wsResult(open, { token: revoked })).closeCode).toBe(4403);
  });
});

describe('limits', () => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await start(db, { maxQueryDepth: 4, maxBodyBytes: 2_000, rateLimitPerMinute: 30, introspection: false });
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('refuses a query deeper than the limit', async () => {
    const deep = '{ leases { edges { node { resource { blueprint { resources { edges { node { id } } } } } } } } }';
    const { body } = await graphqlRequest(app.graphqlUrl, deep);
    expect(body.data).toBeUndefined();
    expect(body.errors).toEqual([
      { message: 'Query depth limit of 4 exceeded, found 9.', extensions: { code: 'QUERY_TOO_DEEP' } },
    ]);
  });

  it('refuses a query with too many aliases, with a code', async () => {
    const aliased = `{ ${Array.from({ length: 31 }, (_, n) => `a${n}: viewer { id }`).join(' ')} }`;
    const { body } = await graphqlRequest(app.graphqlUrl, aliased);
    expect(body.errors?.[0]?.extensions?.['code']).toBe('TOO_MANY_ALIASES');
  });

  it('refuses an oversized body before reading it', async () => {
    const response = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables: { padding: 'x'.repeat(5_000) } }),
    });
    expect(response.status).toBe(413);
  });

  it('refuses a streamed body of undeclared length before reading it', async () => {
    const { request } = await import('node:http');
    const send = (headers: Record<string, string>, chunks: string[]) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(app.graphqlUrl, { method: 'POST', headers }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        for (const chunk of chunks) req.write(chunk);
        req.end();
      });
    const big = JSON.stringify({ query, variables: { padding: 'x'.repeat(5_000) } });
    // Streamed (chunked): refused before a byte of it is read, whatever its size.
    const streamed = await send({ 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, [
      big.slice(0, 2_500),
      big.slice(2_500),
    ]);
    expect(streamed.status).toBe(411);
  });

  it('refuses introspection when it is turned off', async () => {
    const { body } = await graphqlRequest(app.graphqlUrl, '{ __schema { types { name } } }');
    expect(body.errors?.[0]?.message).toMatch(/introspection/i);
  });

  it('rate-limits one principal and says so with 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await graphqlRequest(app.graphqlUrl, query)).status);
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(25);
    expect(statuses.filter((status) => status === 200).length).toBeLessThanOrEqual(34);
    expect(statuses.at(-1)).toBe(429);
  });
});

describe('query cost limit', () => {
  // Pages of 100 blueprints, each with 100 resources, each with 100 leases, each with its log.
  const costly = (first: (level: number) => string) =>
    `blueprints${first(0)} { edges { node { resources${first(1)} { edges { node { leases${first(2)} { edges { node { logs { type data } } } } } } } } } }`;
  const cases: [string, string, Record<string, unknown>][] = [
    ['literals', `{ ${costly(() => '(first: 100)')} }`, {}],
    ['variables', `query ($n: Int) { ${costly(() => '(first: $n)')} }`, { n: 100 }],
    [
      'one variable per page',
      `query ($a: Int, $b: Int, $c: Int) { ${costly((l) => `(first: $${'abc'[l]})`)} }`,
      { a: 100, b: 100, c: 100 },
    ],
    ['last, as a variable', `query ($n: Int) { ${costly(() => '(last: $n)')} }`, { n: 100 }],
    ['variable defaults', `query ($n: Int = 100) { ${costly(() => '(first: $n)')} }`, {}],
    ['a null variable (the default page)', `query ($n: Int) { ${costly(() => '(first: $n)')} }`, { n: null }],
    ['page sizes omitted (the default page)', `{ ${costly(() => '')} }`, {}],
    [
      'a page past the maximum (served as the maximum)',
      `query ($n: Int) { ${costly(() => '(first: $n)')} }`,
      { n: 1e6 },
    ],
  ];
  const refusal = expect.objectContaining({
    message: expect.stringMatching(/^Query Cost limit of 20000 exceeded, found \d+\.$/) as unknown,
    extensions: expect.objectContaining({ code: 'QUERY_TOO_COSTLY' }) as unknown,
  }) as unknown;
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await start(db, {});
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  const overWs = (payload: { query: string; variables?: Record<string, unknown> }) => {
    const client = wsClient(app.graphqlUrl);
    return new Promise<unknown>((resolve) => {
      client.subscribe(payload, { next: resolve, error: resolve, complete: () => resolve('completed') });
    }).finally(() => client.dispose());
  };

  it.each(cases)('is not bypassed by %s: refused over HTTP, before it runs', async (_name, query, variables) => {
    const { body } = await graphqlRequest(app.graphqlUrl, query, variables);
    expect(body.data).toBeUndefined();
    expect(body.errors).toEqual([refusal]);
  });

  it.each(cases)('is not bypassed by %s: refused over graphql-ws', async (_name, query, variables) => {
    expect(await overWs({ query, variables })).toEqual({ errors: [refusal] });
  });

  it('refuses a costly subscription over graphql-ws', async () => {
    const query = `subscription ($n: Int) { leasesChanged { resource { leases(first: $n) { edges { node { logs { type } } } } } } }`;
    expect(await overWs({ query, variables: { n: 100 } })).toEqual({ errors: [refusal] });
  });

  it('a refused mutation is not executed: nothing is stored', async () => {
    const before = await db.prisma.lease.count();
    const query = `mutation ($n: Int) { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload {
      leases { resource { leases(first: $n) { edges { node { logs { type } } } } } } } } }`;
    const { body } = await graphqlRequest(app.graphqlUrl, query, { n: 100 });
    expect(body.errors).toEqual([refusal]);
    expect(await db.prisma.lease.count()).toBe(before);
  });

  it('a cheap query with variables still runs, over HTTP and graphql-ws', async () => {
    const query = 'query ($n: Int) { leases(first: $n) { edges { node { id logs { type } } } } }';
    expect((await graphqlRequest(app.graphqlUrl, query, { n: 3 })).body).toEqual({ data: { leases: { edges: [] } } });
    expect(await overWs({ query, variables: { n: 3 } })).toEqual({ data: { leases: { edges: [] } } });
    // The same shape with a larger page is refused: the variable is what is weighed.
    expect((await graphqlRequest(app.graphqlUrl, query, { n: 100 })).body.errors).toEqual([refusal]);
  });
});
