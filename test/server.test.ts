import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';

const quiet = createLogger('error', () => {});

describeEachDatabase('server', (kind) => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const blueprint = await db.prisma.blueprint.create({
      data: { name: 'pool', implementation: 'host-pool', resourceType: 'host', config: {} },
    });
    const resource = await db.prisma.resource.create({
      data: { blueprintId: blueprint.id, type: 'host', name: 'host-1', status: 'ACTIVE' },
    });
    await db.prisma.lease.create({ data: { resourceType: 'host', status: 'ACTIVE', resourceId: resource.id } });
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${app.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', database: kind });
  });

  it('serves GraphiQL at /graphql to a browser', async () => {
    const page = await fetch(`${app.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>Drydock</title>');
    // Served whole from this server, so it works offline: no script from a CDN.
    expect(html).not.toMatch(/<script[^>]+src="https?:/);
  });

  it('lists blueprints, resources and leases over HTTP, and fetches each by id', async () => {
    const { body } = await graphqlRequest<{
      blueprints: { edges: { node: { id: string; name: string } }[] };
      resources: { edges: { node: { id: string; status: string; blueprint: { name: string } } }[] };
      leases: { edges: { node: { id: string; status: string; resource: { name: string } } }[] };
    }>(
      app.graphqlUrl,
      `{ blueprints { edges { node { id name } } }
         resources { edges { node { id status blueprint { name } } } }
         leases(filter: { status: [ACTIVE] }) { edges { node { id status resource { name } } } } }`,
    );
    expect(body.errors).toBeUndefined();
    const blueprint = body.data!.blueprints.edges[0]!.node;
    const resource = body.data!.resources.edges[0]!.node;
    const lease = body.data!.leases.edges[0]!.node;
    expect(blueprint.name).toBe('pool');
    expect(resource).toMatchObject({ status: 'ACTIVE', blueprint: { name: 'pool' } });
    expect(lease).toMatchObject({ status: 'ACTIVE', resource: { name: 'host-1' } });

    const byId = await graphqlRequest<Record<string, { id: string } | null>>(
      app.graphqlUrl,
      `query ($b: ID!, $r: ID!, $l: ID!) { blueprint(id: $b) { id } resource(id: $r) { id } lease(id: $l) { id } node(id: $l) { id } }`,
      { b: blueprint.id, r: resource.id, l: lease.id },
    );
    expect(byId.body.data).toEqual({
      blueprint: { id: blueprint.id },
      resource: { id: resource.id },
      lease: { id: lease.id },
      node: { id: lease.id },
    });
  });

  it('refuses an id of another type with BAD_USER_INPUT, naming both types', async () => {
    const leases = await graphqlRequest<{ leases: { edges: { node: { id: string } }[] } }>(
      app.graphqlUrl,
      '{ leases { edges { node { id } } } }',
    );
    const leaseId = leases.body.data!.leases.edges[0]!.node.id;
    const { body } = await graphqlRequest(app.graphqlUrl, 'query ($id: ID!) { blueprint(id: $id) { id } }', {
      id: leaseId,
    });
    expect(body).toMatchObject({
      data: { blueprint: null },
      errors: [
        {
          message: 'id: expected the id of a Blueprint, got the id of a Lease',
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ],
    });
  });

  it('answers over graphql-ws on the same port and path', async () => {
    const client = createClient({
      url: app.graphqlUrl.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    try {
      const result = await new Promise<unknown>((resolve, reject) => {
        let value: unknown;
        client.subscribe(
          { query: '{ leases { edges { node { status } } } }' },
          { next: (data) => (value = data), error: reject, complete: () => resolve(value) },
        );
      });
      expect(result).toEqual({ data: { leases: { edges: [{ node: { status: 'ACTIVE' } }] } } });
    } finally {
      await client.dispose();
    }
  });

  it('answers over server-sent events', async () => {
    const response = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: '{ blueprints { edges { node { name } } } }' }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    expect(text).toContain('event: next');
    expect(text).toContain('"name":"pool"');
  });

  it('masks unexpected errors and rejects malformed requests without a stack trace', async () => {
    const response = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": ',
    });
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).not.toMatch(/at .*\.(ts|js):\d+/);
  });
});
