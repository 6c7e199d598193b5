import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { principalWithToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';
import { wsClient } from '../support/ws.js';

// The server ends an SSE subscription early (shutdown, its token revoked) with a last error that
// says why, written to the response behind the execution's back: the operation log saw only the
// stream close, and wrote the subscription as ok.

type Line = Record<string, unknown> & { msg: string };

const CHANGES = 'subscription Changes { leasesChanged { databaseId status } }';

/** An SSE stream subscribed to CHANGES, open once this resolves; `ended` is all it received. */
async function openStream(app: App, token: string | null): Promise<{ ended: Promise<string> }> {
  const response = await fetch(app.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: CHANGES, operationName: 'Changes' }),
  });
  expect(response.status).toBe(200);
  return { ended: response.text() };
}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('pglite');
});
afterAll(() => db?.dispose());

/** Runs `body` with a server of its own, and its operation log. */
async function withServer(body: (app: App, lines: () => Line[]) => Promise<void>) {
  const written: string[] = [];
  const logger = createLogger('info', (line) => written.push(line));
  const app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 30_000 }, logger);
  const lines = () =>
    written.map((line) => JSON.parse(line) as Line).filter((line) => line.msg === 'graphql operation');
  let closed: Promise<void> | undefined;
  const closeOnce = () => (closed ??= app.close());
  try {
    await body({ ...app, close: closeOnce }, lines);
  } finally {
    await closeOnce();
  }
}

it('logs an SSE subscription the server ends at shutdown with SHUTTING_DOWN, not as ok', async () => {
  await withServer(async (app, lines) => {
    const stream = await openStream(app, null);
    await app.close();
    expect(await stream.ended).toContain('"code":"SHUTTING_DOWN"');
    const line = await waitFor(() => lines().find((entry) => entry['operation'] === 'Changes'));
    expect(line).toMatchObject({
      level: 'warn',
      principal: 'local-admin',
      type: 'subscription',
      outcome: 'error',
      errorCodes: ['SHUTTING_DOWN'],
    });
  });
});

it('logs an SSE subscription its revoked token ends with UNAUTHENTICATED', async () => {
  await withServer(async (app, lines) => {
    const { token, row } = await principalWithToken(db, 'ci');
    const stream = await openStream(app, token);
    const id = Buffer.from(`ApiToken:${row.id}`).toString('base64');
    const revoked = await graphqlRequest(app.graphqlUrl, `mutation { revokeApiToken(id: "${id}") { __typename } }`);
    expect(revoked.body.errors).toBeUndefined();
    expect(await stream.ended).toContain('"code":"UNAUTHENTICATED"');
    const line = await waitFor(() => lines().find((entry) => entry['operation'] === 'Changes'));
    expect(line).toMatchObject({ principal: 'ci', outcome: 'error', errorCodes: ['UNAUTHENTICATED'] });
  });
});

it('still logs a subscription its client leaves as ok', async () => {
  await withServer(async (app, lines) => {
    const controller = new AbortController();
    const response = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: CHANGES, operationName: 'Changes' }),
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    controller.abort();
    const line = await waitFor(() => lines().find((entry) => entry['operation'] === 'Changes'));
    expect(line).toMatchObject({ level: 'info', outcome: 'ok' });
    expect(line).not.toHaveProperty('errorCodes');
  });
});

const EVENTS = 'subscription Events($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor } }';

/**
 * A graphql-ws subscription to a lease's events (of `ownerId`'s lease, with one log entry), open
 * on the server once this resolves: its first event, replayed, has arrived. `ended` is how it ended.
 */
async function openSocket(app: App, token: string | null, ownerId: number | null) {
  const lease = await db.prisma.lease.create({ data: { resourceType: 'host', ownerId } });
  await db.prisma.log.create({ data: { type: 'lease-queued', leaseId: lease.id } });
  const client = wsClient(app.graphqlUrl, token ? { authorization: `Bearer ${token}` } : undefined);
  let opened: () => void = () => {};
  const open = new Promise<void>((resolve) => (opened = resolve));
  const ended = new Promise<unknown>((resolve) => {
    client.subscribe(
      {
        query: EVENTS,
        operationName: 'Events',
        variables: { id: Buffer.from(`Lease:${lease.id}`).toString('base64') },
      },
      { next: () => opened(), error: resolve, complete: () => resolve('complete') },
    );
  });
  await Promise.race([
    open,
    ended.then((how) => Promise.reject(new Error(`ended before it opened: ${JSON.stringify(how)}`))),
  ]);
  return { client, ended };
}

it('logs a WebSocket subscription the server ends at shutdown with SHUTTING_DOWN, not as ok', async () => {
  await withServer(async (app, lines) => {
    const { client, ended } = await openSocket(app, null, null);
    try {
      await app.close();
      await ended;
      const line = await waitFor(() => lines().find((entry) => entry['operation'] === 'Events'));
      expect(line).toMatchObject({
        level: 'warn',
        type: 'subscription',
        outcome: 'error',
        errorCodes: ['SHUTTING_DOWN'],
      });
    } finally {
      await client.dispose();
    }
  });
});

it('logs a WebSocket subscription its revoked token ends with UNAUTHENTICATED', async () => {
  await withServer(async (app, lines) => {
    const { token, row } = await principalWithToken(db, 'ws-ci');
    const { client, ended } = await openSocket(app, token, row.principalId);
    try {
      const id = Buffer.from(`ApiToken:${row.id}`).toString('base64');
      const revoked = await graphqlRequest(app.graphqlUrl, `mutation { revokeApiToken(id: "${id}") { __typename } }`);
      expect(revoked.body.errors).toBeUndefined();
      await ended;
      const line = await waitFor(() => lines().find((entry) => entry['operation'] === 'Events'));
      expect(line).toMatchObject({ principal: 'ws-ci', outcome: 'error', errorCodes: ['UNAUTHENTICATED'] });
    } finally {
      await client.dispose();
    }
  });
});
