import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { principalWithToken, tokenFor } from '../support/tokens.js';

// A token is checked when a connection opens and on each operation; these show that a
// subscription already running ends too when its token is revoked (in this process or another)
// or expires, and that SSE streams end at shutdown instead of holding it up.

const quiet = createLogger('error', () => {});
const CHANGES = 'subscription { leasesChanged { databaseId status } }';

type Ending = { code: number; reason: string; acknowledged: boolean };

/** A graphql-ws socket subscribed to CHANGES: how it closed, once it does. */
function socketSubscription(
  graphqlUrl: string,
  token: string | null,
): { closed: Promise<Ending>; subscribed: Promise<void> } {
  let subscribedNow: () => void = () => {};
  const subscribed = new Promise<void>((resolve) => (subscribedNow = resolve));
  const closed = new Promise<Ending>((resolve) => {
    let acknowledged = false;
    const socket = new WebSocket(graphqlUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
    socket.on('open', () =>
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }),
      ),
    );
    socket.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type: string }).type !== 'connection_ack') return;
      acknowledged = true;
      socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: CHANGES } }));
      subscribedNow();
    });
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString(), acknowledged }));
  });
  return { closed, subscribed };
}

/** An SSE stream subscribed to CHANGES: every event it got, once it ends. */
async function streamSubscription(
  graphqlUrl: string,
  token: string | null,
  // Yoga streams a subscription as SSE for `*\/*` or no Accept header at all (curl's default) too.
  accept: string | null = 'text/event-stream',
): Promise<{ ended: Promise<string[]> }> {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(accept !== null ? { accept } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: CHANGES }),
  });
  expect(response.status).toBe(200);
  const ended = (async () => {
    const events: string[] = [];
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!message.startsWith(':')) events.push(message);
      }
    }
    return events;
  })();
  return { ended };
}

/**
 * A query answered as multipart/mixed (Yoga's boundary is "-"), read until its headers and then
 * not at all, so that its big body holds the response open; `resume` reads the rest of it.
 * Yoga answers a subscription as SSE only (multipart/mixed gets 406), so a multipart response is
 * a query's, ended early by the server only while its body is still being sent.
 */
async function stalledMultipartQuery(
  graphqlUrl: string,
  token: string | null,
  query: string,
): Promise<{ resume: () => Promise<string> }> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = httpRequest(graphqlUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'multipart/mixed',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    });
    request.on('response', resolve).on('error', reject);
    request.end(JSON.stringify({ query }));
  });
  response.pause();
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toBe('multipart/mixed; boundary="-"');
  return {
    resume: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString();
    },
  };
}

/**
 * A query whose answer is far more than the connection's buffers hold: a lease with a big
 * attribute, read many times over under aliases.
 */
async function bigAnswerQuery(db: TestDatabase): Promise<string> {
  const lease = await db.prisma.lease.create({
    // Not PENDING: the queue's index holds a pending lease's attributes, and these are too big for it.
    data: { resourceType: 'bulky', status: 'DESTROYED', attributes: { blob: 'x'.repeat(500_000) } },
  });
  const id = Buffer.from(`Lease:${lease.id}`).toString('base64');
  return `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: lease(id: "${id}") { attributes }`).join(' ')} }`;
}

/**
 * The JSON bodies of a multipart/mixed body with boundary "-", checked to be well formed to the
 * end: a preamble, parts each with their headers and a Content-Length that matches, and the
 * closing delimiter last.
 */
function multipartParts(body: string): unknown[] {
  const closing = '\r\n-----\r\n';
  expect(body.endsWith(closing), `ends with the closing delimiter: ${JSON.stringify(body.slice(-80))}`).toBe(true);
  const [preamble, ...parts] = body.slice(0, -closing.length).split('\r\n---');
  expect(preamble).toBe('');
  return parts.map((part) => {
    const match = /^\r\nContent-Type: application\/json; charset=utf-8\r\nContent-Length: (\d+)\r\n\r\n([^]*)$/.exec(
      part,
    );
    expect(match, `a well-formed part: ${JSON.stringify(part)}`).not.toBeNull();
    expect(Buffer.byteLength(match![2]!)).toBe(Number(match![1]));
    return JSON.parse(match![2]!) as unknown;
  });
}

async function revoke(app: App, tokenId: number): Promise<void> {
  const id = Buffer.from(`ApiToken:${tokenId}`).toString('base64');
  const { body } = await graphqlRequest<{ revokeApiToken: { __typename: string } }>(
    app.graphqlUrl,
    `mutation { revokeApiToken(id: "${id}") { __typename } }`,
  );
  expect(body.data?.revokeApiToken.__typename).toBe('RevokeApiTokenPayload');
}

describe('subscriptions and the token they opened with', () => {
  let db: TestDatabase;
  let app: App;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('end at once when their token is revoked, over graphql-ws and SSE; another token’s go on', async () => {
    const { token, row } = await principalWithToken(db, 'ci');
    const other = await principalWithToken(db, 'dashboard');
    const socket = socketSubscription(app.graphqlUrl, token);
    const bystander = socketSubscription(app.graphqlUrl, other.token);
    const streams = await Promise.all(
      ['text/event-stream', '*/*', null].map((accept) => streamSubscription(app.graphqlUrl, token, accept)),
    );
    await Promise.all([socket.subscribed, bystander.subscribed]);

    await revoke(app, row.id);
    expect(await socket.closed).toMatchObject({
      code: 4403,
      reason: 'Not authenticated: this API token was revoked.',
      acknowledged: true,
    });
    for (const stream of streams) {
      const events = await stream.ended;
      expect(events.at(-2)).toMatch(/^event: next\ndata: .*"code":"UNAUTHENTICATED"/);
      expect(events.at(-1)).toBe('event: complete\ndata:');
    }

    // The other principal's subscription is still open: revoking its own token ends it too.
    const raced = await Promise.race([bystander.closed, new Promise((resolve) => setTimeout(resolve, 200, 'open'))]);
    expect(raced).toBe('open');
    await revoke(app, other.row.id);
    expect((await bystander.closed).code).toBe(4403);
  });

  it('end a multipart/mixed response with a last part that says why, then the closing delimiter', async () => {
    const { token, row } = await principalWithToken(db, 'bulk-reader', { isAdmin: true });
    const refused = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'multipart/mixed', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: CHANGES }),
    });
    expect(refused.status).toBe(406);
    const stalled = await stalledMultipartQuery(app.graphqlUrl, token, await bigAnswerQuery(db));
    // The same token's socket closes when its revocation reached this process's sessions.
    const socket = socketSubscription(app.graphqlUrl, token);
    await socket.subscribed;
    await revoke(app, row.id);
    expect((await socket.closed).code).toBe(4403);
    const parts = multipartParts(await stalled.resume());
    expect(parts).toHaveLength(2);
    expect(parts.at(-1)).toEqual({
      errors: [{ message: 'Not authenticated: this API token was revoked.', extensions: { code: 'UNAUTHENTICATED' } }],
    });
  });

  it('hold no admission slot while they stream, whatever the Accept header', async () => {
    const limited = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, maxInFlightPerPrincipal: 2 },
      quiet,
    );
    try {
      const { token, row } = await principalWithToken(db, 'watcher');
      const streams = await Promise.all(
        ['text/event-stream', '*/*', null].map((accept) => streamSubscription(limited.graphqlUrl, token, accept)),
      );
      const { status, body } = await graphqlRequest<{ leases: unknown }>(
        limited.graphqlUrl,
        '{ leases { edges { node { id } } } }',
        {},
        { authorization: `Bearer ${token}` },
        { retryRefused: false },
      );
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      await revoke(limited, row.id);
      await Promise.all(streams.map((stream) => stream.ended));
    } finally {
      await limited.close();
    }
  });

  it('end when their token expires', async () => {
    const { principal } = await principalWithToken(db, 'short-lived');
    const { token, row } = await tokenFor(db, principal, { name: 'two seconds' });
    await db.prisma.apiToken.update({ where: { id: row.id }, data: { expiresAt: new Date(Date.now() + 2_000) } });
    const socket = socketSubscription(app.graphqlUrl, token);
    await socket.subscribed;
    expect(await socket.closed).toMatchObject({ code: 4403, reason: 'Not authenticated: this API token has expired.' });
  });

  it('a token makes no token that outlives it', async () => {
    const { principal } = await principalWithToken(db, 'expiring');
    const { token, row } = await tokenFor(db, principal);
    const expiresAt = new Date(Date.now() + 3_600_000);
    await db.prisma.apiToken.update({ where: { id: row.id }, data: { expiresAt } });
    const create = (input: string) =>
      graphqlRequest<{ createApiToken: { __typename: string; message?: string } }>(
        app.graphqlUrl,
        `mutation { createApiToken(input: { name: "child"${input} }) { __typename ... on Error { message } } }`,
        {},
        { authorization: `Bearer ${token}` },
      );
    const later = await create(`, expiresAt: "${new Date(expiresAt.getTime() + 60_000).toISOString()}"`);
    expect(later.body.data?.createApiToken).toEqual({
      __typename: 'ValidationError',
      message: `expiresAt must be no later than ${expiresAt.toISOString()}, when the token creating it expires`,
    });
    expect((await create('')).body.data?.createApiToken.__typename).toBe('CreateApiTokenPayload');
    const child = await db.prisma.apiToken.findFirstOrThrow({ where: { name: 'child' } });
    expect(child.expiresAt).toEqual(expiresAt);
  });
});

describe('shutdown with an SSE subscriber', () => {
  it('ends the stream with its reason and does not wait for the shutdown timeout', async () => {
    const db = await createTestDatabase('pglite');
    const app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 30_000 }, quiet);
    try {
      const stream = await streamSubscription(app.graphqlUrl, null);
      const started = Date.now();
      await app.close();
      expect(Date.now() - started).toBeLessThan(10_000);
      const events = await stream.ended;
      expect(events.at(-2)).toMatch(/"code":"SHUTTING_DOWN"/);
      expect(events.at(-1)).toBe('event: complete\ndata:');
    } finally {
      await db.dispose();
    }
  });
  it('ends a multipart/mixed response with a last part that says why, then the closing delimiter', async () => {
    const db = await createTestDatabase('pglite');
    const app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 30_000 }, quiet);
    try {
      const stalled = await stalledMultipartQuery(app.graphqlUrl, null, await bigAnswerQuery(db));
      const socket = socketSubscription(app.graphqlUrl, null);
      await socket.subscribed;
      const closing = app.close();
      // Sockets are told of the shutdown when the streams are: it has reached the stalled response.
      expect((await socket.closed).code).toBe(1001);
      const parts = multipartParts(await stalled.resume());
      await closing;
      expect(parts).toHaveLength(2);
      expect(parts.at(-1)).toEqual({
        errors: [
          { message: 'The server is shutting down; reconnect to another.', extensions: { code: 'SHUTTING_DOWN' } },
        ],
      });
    } finally {
      await db.dispose();
    }
  });
});

describePostgres('a token revoked through another server process', () => {
  let db: TestDatabase;
  let a: App;
  let b: App;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 };
    a = await serve(db, { ...config, workerConcurrency: 0 }, quiet);
    b = await serve(db, { ...config, workerConcurrency: 0 }, quiet);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.dispose();
  });

  it('ends the subscriptions it opened on this one', async () => {
    const { token, row } = await principalWithToken(db, 'ci');
    const socket = socketSubscription(a.graphqlUrl, token);
    await socket.subscribed;
    await revoke(b, row.id);
    expect(await socket.closed).toMatchObject({ code: 4403, reason: 'Not authenticated: this API token was revoked.' });
  });
});
