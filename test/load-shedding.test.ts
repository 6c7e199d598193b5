import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SLOW_CONSUMER_CLOSE_CODE } from '../src/server/websocket.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';

const quiet = createLogger('error', () => {});
const body = JSON.stringify({ query: '{ leases(first: 1) { edges { node { id } } } }' });

/**
 * A GraphQL request held in flight: its headers are sent and the server has admitted it, but it
 * waits for the rest of its body until `finish`. Nothing in the server can tell it from a slow
 * request that is really running.
 */
function heldRequest(url: string, authorization?: string) {
  let req!: ClientRequest;
  const response = new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    req = request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(authorization ? { authorization } : {}),
        },
      },
      (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as unknown }));
      },
    );
    req.on('error', reject);
  });
  req.write(body.slice(0, 5));
  req.flushHeaders();
  return {
    response,
    finish: () => req.end(body.slice(5)),
  };
}

async function timed(url: string, authorization?: string) {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body,
  });
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: (await response.json()) as { errors?: { extensions?: { code?: string } }[] },
    ms: performance.now() - started,
  };
}

async function metric(app: App, name: string): Promise<number> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const inFlight = (app: App, count: number) =>
  waitFor(async () => (await metric(app, 'drydock_requests_in_flight')) === count);

describeEachDatabase('load shedding', (kind) => {
  let db: TestDatabase;
  let app: App;
  let other: string;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    other = `Bearer ${(await principalWithToken(db, 'other', { isAdmin: true })).token}`;
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, workerConcurrency: 0, maxInFlight: 4, maxInFlightPerPrincipal: 3 },
      quiet,
    );
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('refuses past the per-principal and the process bound at once, with Retry-After, and loses nothing it admitted', async () => {
    // Three for the anonymous local admin: its bound.
    const mine = [heldRequest(app.graphqlUrl), heldRequest(app.graphqlUrl), heldRequest(app.graphqlUrl)];
    await inFlight(app, 3);
    const principalFull = await timed(app.graphqlUrl);
    expect(principalFull.status).toBe(429);
    expect(principalFull.retryAfter).toBe('1');
    expect(principalFull.body.errors?.[0]?.extensions?.code).toBe('TOO_MANY_IN_FLIGHT');
    expect(principalFull.ms).toBeLessThan(1_000);

    // Another principal still gets in: the fourth slot of the process.
    const theirs = heldRequest(app.graphqlUrl, other);
    await inFlight(app, 4);
    const processFull = await Promise.all(Array.from({ length: 20 }, () => timed(app.graphqlUrl, other)));
    for (const refused of processFull) {
      expect(refused.status).toBe(503);
      expect(refused.retryAfter).toBe('1');
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('OVERLOADED');
    }
    // Quick even on a busy machine: nothing waited behind the held requests.
    expect(Math.max(...processFull.map((r) => r.ms))).toBeLessThan(1_000);
    expect(await metric(app, 'drydock_requests_refused_total{scope="process"}')).toBeGreaterThanOrEqual(20);
    // Health and metrics are never shed.
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);

    for (const held of [...mine, theirs]) held.finish();
    const answered = await Promise.all([...mine, theirs].map((held) => held.response));
    expect(answered.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    for (const a of answered) expect(a.json).toEqual({ data: { leases: { edges: [] } } });

    // Slots come back once their requests end.
    const again = await graphqlRequest(
      app.graphqlUrl,
      '{ leases(first: 1) { edges { node { id } } } }',
      {},
      {},
      {
        retryRefused: false,
      },
    );
    expect(again.status).toBe(200);
  });

  it('answers a graphql-ws subscribe past the bound with an OVERLOADED error and keeps the connection', async () => {
    const held = [...Array.from({ length: 3 }, () => heldRequest(app.graphqlUrl, other)), heldRequest(app.graphqlUrl)];
    await inFlight(app, 4);
    const socket = new WebSocket(app.graphqlUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const messages: { type: string; id?: string; payload?: unknown }[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data)) as never));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await waitFor(() => messages.some((m) => m.type === 'connection_ack'));
    socket.send(
      JSON.stringify({ type: 'subscribe', id: '1', payload: { query: 'subscription { leasesChanged { id } }' } }),
    );
    const error = await waitFor(() => messages.find((m) => m.id === '1'));
    expect(error.type).toBe('error');
    expect(error.payload).toMatchObject([{ extensions: { code: 'OVERLOADED', retryAfterSeconds: 1 } }]);
    expect(socket.readyState).toBe(WebSocket.OPEN);

    for (const h of held) h.finish();
    await Promise.all(held.map((h) => h.response));
    socket.send(
      JSON.stringify({ type: 'subscribe', id: '2', payload: { query: '{ leases { edges { node { id } } } }' } }),
    );
    expect(await waitFor(() => messages.find((m) => m.id === '2'))).toMatchObject({
      type: 'next',
      payload: { data: { leases: { edges: [] } } },
    });
    socket.close();
  });
});

/** Blocks every turn of this process's event loop for `ms` until the returned function is called. */
function blockLoop(ms: number): () => void {
  let blocking = true;
  const turn = () => {
    if (!blocking) return;
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // Busy: the loop can do nothing else, as under a flood of work.
    }
    setImmediate(turn);
  };
  setImmediate(turn);
  return () => {
    blocking = false;
  };
}

describe('adaptive admission', () => {
  let db: TestDatabase;
  let adaptive: App;
  let fixed: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    const config = { ...loadConfig({}), port: 0, workerConcurrency: 0 };
    adaptive = await serve(db, { ...config, minInFlight: 2 }, quiet);
    fixed = await serve(db, { ...config, adaptiveInFlight: false }, quiet);
  });
  afterAll(async () => {
    await adaptive?.close();
    await fixed?.close();
    await db?.dispose();
  });

  it('starts at MAX_IN_FLIGHT and says so in its metrics', async () => {
    expect(await metric(adaptive, 'drydock_requests_in_flight_limit')).toBe(64);
    expect(await metric(fixed, 'drydock_requests_in_flight_limit')).toBe(64);
  });

  it('refuses with 503 while the event loop lags with work in flight, and admits again once it does not', async () => {
    // Lag with less than MIN_IN_FLIGHT running refuses nothing: it is not the requests' doing.
    const unblockIdle = blockLoop(80);
    await waitFor(async () => (await metric(adaptive, 'drydock_event_loop_lag_seconds')) > 0.05);
    const idle = await Promise.all(Array.from({ length: 5 }, () => timed(adaptive.graphqlUrl)));
    unblockIdle();
    expect(idle.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);

    const held = [heldRequest(adaptive.graphqlUrl), heldRequest(adaptive.graphqlUrl)];
    await inFlight(adaptive, 2);
    const unblock = blockLoop(80);
    try {
      const refused = await waitFor(async () => {
        const answer = await timed(adaptive.graphqlUrl);
        return answer.status === 503 && answer;
      });
      expect(refused.retryAfter).toBe('1');
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('OVERLOADED');
      expect(await metric(adaptive, 'drydock_event_loop_lag_seconds')).toBeGreaterThan(0.05);
      // With adaptation off, lag refuses nothing: the bound is MAX_IN_FLIGHT alone.
      expect((await timed(fixed.graphqlUrl)).status).toBe(200);
    } finally {
      unblock();
    }
    await waitFor(async () => (await timed(adaptive.graphqlUrl)).status === 200);
    for (const h of held) h.finish();
    expect((await Promise.all(held.map((h) => h.response))).map((a) => a.status)).toEqual([200, 200]);
    expect(await metric(adaptive, 'drydock_requests_refused_total{scope="process"}')).toBeGreaterThanOrEqual(1);
  });
});

describe('slow WebSocket consumers', () => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      {
        ...loadConfig({}),
        port: 0,
        workerConcurrency: 0,
        wsMaxBufferedBytes: 256 * 1024,
        maxInFlight: 1_000,
        maxInFlightPerPrincipal: 1_000,
      },
      quiet,
    );
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('closes a socket that stops reading with code 4008 once its unsent data passes the bound', async () => {
    const socket = new WebSocket(app.graphqlUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
    let acked = false;
    socket.on('message', (data) => (acked ||= String(data).includes('connection_ack')));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await waitFor(() => acked);
    // The client stops reading; each answer (the schema's introspection) is ~100 KiB, so the
    // kernel's buffers fill and the rest waits in the server.
    socket.pause();
    const introspection =
      '{ __schema { types { name description fields { name description args { name description } type { name } } } } }';
    for (let id = 0; id < 400; id++) {
      socket.send(JSON.stringify({ type: 'subscribe', id: String(id), payload: { query: introspection } }));
    }
    await waitFor(async () => (await metric(app, 'drydock_ws_slow_consumers_closed_total')) === 1);
    const rss = process.memoryUsage().rss;
    socket.resume();
    expect(await closed).toBe(SLOW_CONSUMER_CLOSE_CODE);
    // Bounded: the server did not hold all 400 answers (~40 MiB) for the client.
    expect(process.memoryUsage().rss - rss).toBeLessThan(40 * 1024 * 1024);
  });
});
