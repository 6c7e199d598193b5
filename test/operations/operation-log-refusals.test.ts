import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve, type App } from '../../src/app.js';
import { generateToken } from '../../src/auth/tokens.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { wsClient } from '../support/ws.js';

type Line = Record<string, unknown> & { msg: string };

async function issueToken(db: TestDatabase, name: string, revoked = false): Promise<string> {
  const principal = await db.prisma.principal.create({ data: { name, kind: 'USER' } });
  const { token, hash, prefix } = generateToken();
  await db.prisma.apiToken.create({
    data: {
      principalId: principal.id,
      name: `${name}'s token`,
      tokenHash: hash,
      prefix,
      ...(revoked ? { revokedAt: new Date() } : {}),
    },
  });
  return token;
}

async function post(url: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
  return { status: response.status, codes: (json.errors ?? []).map((error) => error.extensions?.code) };
}

/** One operation over graphql-ws on its own connection; resolves with its errors (none: ok). */
function overWs(app: App, payload: { query: string; operationName?: string }, token?: string): Promise<unknown> {
  const client = wsClient(app.graphqlUrl, token ? { authorization: `Bearer ${token}` } : undefined);
  return new Promise<unknown>((resolve) => {
    client.subscribe(payload, {
      next: (value) => value.errors && resolve(value.errors),
      error: (error) => resolve(error),
      complete: () => resolve(undefined),
    });
  }).finally(() => client.dispose());
}

// PGlite only: what is logged does not depend on the database.
describe('the operation log for operations refused before they run', () => {
  let db: TestDatabase;
  let app: App;
  let limited: App;
  let valid: string;
  let revoked: string;
  let other: string;
  const lines: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    valid = await issueToken(db, 'dana');
    revoked = await issueToken(db, 'erin', true);
    other = await issueToken(db, 'fay');
    const logger = createLogger('info', { write: (line) => lines.push(line), format: 'json' });
    const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 };
    app = await serve(db, config, logger);
    limited = await serve(db, { ...config, rateLimitPerMinute: 2 }, logger);
  });
  afterAll(async () => {
    await app?.close();
    await limited?.close();
    await db.dispose();
  });

  const entries = () =>
    lines
      .map((line) => JSON.parse(line) as Line)
      .filter((line) => line.msg === 'graphql operation' || line.msg === 'graphql-ws connection refused');

  /** Runs `send` and returns the one entry it wrote (and checks it wrote exactly one). */
  async function entryOf(send: () => Promise<unknown>): Promise<Line> {
    const before = entries().length;
    await send();
    await expect.poll(() => entries().length, { timeout: 5_000 }).toBeGreaterThan(before);
    // A second entry for the same operation would come right after the first.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const written = entries().slice(before);
    expect(written).toHaveLength(1);
    const entry = written[0]!;
    expect(typeof entry['durationMs']).toBe('number');
    expect(entry['level']).toBe(entry['outcome'] === 'ok' ? 'info' : 'warn');
    return entry;
  }

  it('writes one entry for each refusal over HTTP: authentication, origin, syntax, validation, rate', async () => {
    const query = 'query Mine { leases { edges { node { id } } } }';

    const unknownToken = await entryOf(async () =>
      expect(await post(app.graphqlUrl, { query }, { authorization: `Bearer ${revoked}` })).toMatchObject({
        status: 401,
      }),
    );
    expect(unknownToken).toMatchObject({ operation: 'Mine', type: 'query', outcome: 'invalid' });
    expect(unknownToken['errorCodes']).toEqual(['UNAUTHENTICATED']);
    expect(unknownToken).not.toHaveProperty('principal');

    const garbage = await entryOf(async () =>
      expect(await post(app.graphqlUrl, { query }, { authorization: 'Bearer not-a-token' })).toMatchObject({
        status: 401,
      }),
    );
    expect(garbage).toMatchObject({ outcome: 'invalid', errorCodes: ['UNAUTHENTICATED'] });
    expect(garbage).not.toHaveProperty('principal');

    const crossOrigin = await entryOf(async () =>
      expect(await post(app.graphqlUrl, { query }, { origin: 'https://evil.example' })).toMatchObject({
        status: 403,
      }),
    );
    expect(crossOrigin).toMatchObject({ operation: 'Mine', outcome: 'invalid', errorCodes: ['FORBIDDEN'] });
    expect(crossOrigin).not.toHaveProperty('principal');

    // Twice: the second time Yoga answers from its cache of parse errors.
    for (let i = 0; i < 2; i++) {
      const broken = await entryOf(async () =>
        expect((await post(app.graphqlUrl, { query: 'query Broken { viewer { ' })).codes).toHaveLength(1),
      );
      expect(broken).toMatchObject({ operation: '(unparsed)', outcome: 'invalid' });
      expect(broken['errorCodes']).toEqual(['GRAPHQL_PARSE_FAILED']);
      expect(broken).not.toHaveProperty('principal');
    }

    for (let i = 0; i < 2; i++) {
      const invalid = await entryOf(async () =>
        expect(
          (
            await post(
              app.graphqlUrl,
              { query: 'query Nope { leases { nope } }' },
              { authorization: `Bearer ${valid}` },
            )
          ).codes,
        ).toEqual(['GRAPHQL_VALIDATION_FAILED']),
      );
      expect(invalid).toMatchObject({ operation: 'Nope', type: 'query', outcome: 'invalid' });
      expect(invalid['errorCodes']).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    }

    for (let i = 0; i < 2; i++) {
      const ok = await entryOf(() => post(limited.graphqlUrl, { query }, { authorization: `Bearer ${valid}` }));
      expect(ok).toMatchObject({ principal: 'dana', outcome: 'ok' });
    }
    const rateLimited = await entryOf(async () =>
      expect(await post(limited.graphqlUrl, { query }, { authorization: `Bearer ${valid}` })).toMatchObject({
        status: 429,
        codes: ['RATE_LIMITED'],
      }),
    );
    expect(rateLimited).toMatchObject({
      principal: 'dana',
      operation: 'Mine',
      type: 'query',
      outcome: 'invalid',
      errorCodes: ['RATE_LIMITED'],
    });
  });

  it('writes one entry for each refusal over graphql-ws: syntax, validation, rate', async () => {
    for (let i = 0; i < 2; i++) {
      const broken = await entryOf(async () =>
        expect(await overWs(app, { query: 'query Broken { viewer { ' })).toBeTruthy(),
      );
      expect(broken).toMatchObject({
        operation: '(unparsed)',
        outcome: 'invalid',
        errorCodes: ['GRAPHQL_PARSE_FAILED'],
      });
    }
    for (let i = 0; i < 2; i++) {
      const invalid = await entryOf(async () =>
        expect(await overWs(app, { query: 'subscription Nope { leasesChanged { nope } }' }, valid)).toBeTruthy(),
      );
      expect(invalid).toMatchObject({
        operation: 'Nope',
        type: 'subscription',
        outcome: 'invalid',
        errorCodes: ['GRAPHQL_VALIDATION_FAILED'],
      });
    }
    const again = { query: 'query Again { leases { edges { node { id } } } }' };
    for (let i = 0; i < 2; i++) {
      const ok = await entryOf(async () => expect(await overWs(limited, again, other)).toBeUndefined());
      expect(ok).toMatchObject({ principal: 'fay', outcome: 'ok' });
    }
    const rateLimited = await entryOf(async () =>
      expect(await overWs(limited, again, other)).toEqual([
        expect.objectContaining({ extensions: expect.objectContaining({ code: 'RATE_LIMITED' }) }),
      ]),
    );
    expect(rateLimited).toMatchObject({
      principal: 'fay',
      operation: 'Again',
      type: 'query',
      outcome: 'invalid',
      errorCodes: ['RATE_LIMITED'],
    });
    expect(lines.join('\n')).not.toContain(valid);
    expect(lines.join('\n')).not.toContain(other);
    expect(lines.join('\n')).not.toContain(revoked);
  });

  it('writes one entry for an operation a limit refuses as it starts, over graphql-ws and HTTP', async () => {
    const costly = {
      query: 'query Costly($n: Int) { leases(first: $n) { edges { node { logs { type } } } } }',
      variables: { n: 1000 },
    };
    let nested: unknown = 'leaf';
    for (let i = 0; i < 100; i++) nested = { deeper: nested };
    const deep = {
      query:
        'query Deep($attributes: JSON) { leaseCandidates(input: { resourceType: "host", attributes: $attributes }) { __typename } }',
      variables: { attributes: nested },
    };
    const costlyWatch = {
      query:
        'subscription CostlyWatch($n: Int) { leasesChanged { resource { leases(first: $n) { edges { node { logs { type } } } } } } }',
      variables: { n: 1000 },
    };
    for (const [payload, code, type] of [
      [costly, 'QUERY_TOO_COSTLY', 'query'],
      [deep, 'BAD_USER_INPUT', 'query'],
      [costlyWatch, 'QUERY_TOO_COSTLY', 'subscription'],
    ] as const) {
      const overSocket = await entryOf(async () =>
        expect(await overWs(app, payload, valid)).toEqual([
          expect.objectContaining({ extensions: expect.objectContaining({ code }) }),
        ]),
      );
      expect(overSocket).toMatchObject({ principal: 'dana', type, outcome: 'invalid', errorCodes: [code] });
      expect(overSocket['operation']).toBe(payload.query.split(/[ (]/)[1]);
      if (type === 'subscription') continue;
      const overHttp = await entryOf(async () =>
        expect((await post(app.graphqlUrl, payload, { authorization: `Bearer ${valid}` })).codes).toEqual([code]),
      );
      expect(overHttp).toMatchObject({ principal: 'dana', type, outcome: 'invalid', errorCodes: [code] });
    }
  });

  it('writes one entry for a graphql-ws connection refused at connection_init', async () => {
    const refusedSocket = (params: Record<string, unknown> | undefined, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(app.graphqlUrl.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers });
        socket.on('open', () =>
          socket.send(JSON.stringify({ type: 'connection_init', ...(params ? { payload: params } : {}) })),
        );
        socket.on('close', (code) => resolve(code));
      });
    const badToken = await entryOf(async () =>
      expect(await refusedSocket({ authorization: `Bearer ${revoked}` })).toBe(4403),
    );
    expect(badToken).toMatchObject({
      msg: 'graphql-ws connection refused',
      outcome: 'invalid',
      errorCodes: ['UNAUTHENTICATED'],
    });
    expect(badToken).not.toHaveProperty('principal');
    const crossOrigin = await entryOf(async () =>
      expect(await refusedSocket(undefined, { origin: 'https://evil.example' })).toBe(4403),
    );
    expect(crossOrigin).toMatchObject({ outcome: 'invalid', errorCodes: ['FORBIDDEN'] });
    // An accepted connection writes nothing of its own: only its operations do.
    const before = lines.length;
    expect(await overWs(app, { query: 'query Fine { leases { edges { node { id } } } }' }, valid)).toBeUndefined();
    await expect.poll(() => entries().length).toBeGreaterThan(0);
    expect(lines.slice(before).map((line) => (JSON.parse(line) as Line).msg)).not.toContain(
      'graphql-ws connection refused',
    );
    expect(lines.join('\n')).not.toContain(revoked);
  });
});
