import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { sample, scrape } from '../support/prometheus.js';
import { collect, wsClient } from '../support/ws.js';

const open = async (app: App, operation: string) =>
  sample(await scrape(app.url), 'drydock_subscriptions_open', { operation }) ?? 0;

// PGlite only: what is counted does not depend on the database.
describe('drydock_subscriptions_open over HTTP', () => {
  let db: TestDatabase;
  let app: App;
  const lines: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    const logger = createLogger('info', { write: (line) => lines.push(line), format: 'json' });
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 }, logger);
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  const subscribe = (name: string, accept: string, signal?: AbortSignal) =>
    fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept },
      body: JSON.stringify({ query: `subscription ${name} { leasesChanged { databaseId } }` }),
      ...(signal ? { signal } : {}),
    });
  const operationLogged = (name: string) =>
    lines.some((line) => {
      const entry = JSON.parse(line) as { msg?: string; operation?: string };
      return entry.msg === 'graphql operation' && entry.operation === name;
    });

  it('counts a subscription only while it streams: not refused with 406, over SSE until its client goes away', async () => {
    const refused = await subscribe('Leak', 'application/json');
    expect(refused.status).toBe(406);
    await refused.body?.cancel();
    expect(await open(app, 'Leak')).toBe(0);
    // Its execution was ended (Yoga never would): the operation log's line comes from its end.
    await expect.poll(() => operationLogged('Leak')).toBe(true);

    // The same operation streaming: one open, not one on top of the refused one.
    const controller = new AbortController();
    const streaming = await subscribe('Leak', 'text/event-stream', controller.signal);
    expect(streaming.status).toBe(200);
    await expect.poll(() => open(app, 'Leak')).toBe(1);
    controller.abort();
    await expect.poll(() => open(app, 'Leak')).toBe(0);
  });

  it('counts a graphql-ws subscription that fails down again', async () => {
    const client = wsClient(app.graphqlUrl);
    try {
      const missing = Buffer.from('Lease:999999').toString('base64');
      // With `after`, not shared: graphql-ws gets the failure from the execution itself, and never
      // calls return() after it.
      const query = `subscription Missing { leaseEvents(leaseId: "${missing}", after: "0") { cursor } }`;
      await expect(collect(client, { query }).done).rejects.toThrow(/does not exist/);
      await expect.poll(() => open(app, 'Missing')).toBe(0);
    } finally {
      await client.dispose();
    }
  });
});
