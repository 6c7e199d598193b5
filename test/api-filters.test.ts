import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';

const quiet = createLogger('error', () => {});
const globalId = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');

describeEachDatabase('list filters', (kind) => {
  let db: TestDatabase;
  let app: App;
  const ids: Record<string, number> = {};

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 }, quiet);
    const alice = await db.prisma.principal.create({ data: { name: 'alice', kind: 'USER' } });
    const linux = await db.prisma.blueprint.create({
      data: { name: 'linux', implementation: 'host-pool', resourceType: 'host' },
    });
    const mac = await db.prisma.blueprint.create({
      data: { name: 'mac', implementation: 'host-pool', resourceType: 'host' },
    });
    const l1 = await db.prisma.resource.create({
      data: {
        blueprintId: linux.id,
        type: 'host',
        name: 'l1',
        status: 'ACTIVE',
        attributes: { platform: 'linux', cores: 8 },
      },
    });
    const m1 = await db.prisma.resource.create({
      data: {
        blueprintId: mac.id,
        type: 'host',
        name: 'm1',
        status: 'ACTIVE',
        attributes: { platform: 'macos', cores: 8 },
      },
    });
    const a = await db.prisma.lease.create({
      data: {
        resourceType: 'host',
        status: 'ACTIVE',
        resourceId: l1.id,
        ownerId: alice.id,
        attributes: { platform: 'linux' },
      },
    });
    const b = await db.prisma.lease.create({
      data: { resourceType: 'host', status: 'PENDING', attributes: { platform: 'macos' } },
    });
    const c = await db.prisma.lease.create({ data: { resourceType: 'host', status: 'ACTIVE', resourceId: m1.id } });
    Object.assign(ids, {
      alice: alice.id,
      linux: linux.id,
      mac: mac.id,
      l1: l1.id,
      m1: m1.id,
      a: a.id,
      b: b.id,
      c: c.id,
    });
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  async function leases(filter: Record<string, unknown>): Promise<number[]> {
    const { body } = await graphqlRequest<{ leases: { edges: { node: { databaseId: number } }[] } }>(
      app.graphqlUrl,
      'query ($filter: LeaseFilter) { leases(filter: $filter) { edges { node { databaseId } } } }',
      { filter },
    );
    expect(body.errors).toBeUndefined();
    return body.data!.leases.edges.map((edge) => edge.node.databaseId);
  }

  async function resources(filter: Record<string, unknown>): Promise<number[]> {
    const { body } = await graphqlRequest<{ resources: { edges: { node: { databaseId: number } }[] } }>(
      app.graphqlUrl,
      'query ($filter: ResourceFilter) { resources(filter: $filter) { edges { node { databaseId } } } }',
      { filter },
    );
    expect(body.errors).toBeUndefined();
    return body.data!.resources.edges.map((edge) => edge.node.databaseId);
  }

  it('filters leases by status, blueprint, resource, owner and attributes, in id order', async () => {
    expect(await leases({})).toEqual([ids['a'], ids['b'], ids['c']]);
    expect(await leases({ status: ['ACTIVE'] })).toEqual([ids['a'], ids['c']]);
    expect(await leases({ blueprintId: globalId('Blueprint', ids['mac']!) })).toEqual([ids['c']]);
    expect(await leases({ resourceId: globalId('Resource', ids['l1']!) })).toEqual([ids['a']]);
    expect(await leases({ ownerId: globalId('Principal', ids['alice']!) })).toEqual([ids['a']]);
    expect(await leases({ attributes: { platform: 'macos' } })).toEqual([ids['b']]);
    expect(await leases({ status: ['PENDING'], attributes: { platform: 'linux' } })).toEqual([]);
  });

  it('filters resources by status, type, blueprint and attributes', async () => {
    expect(await resources({ type: 'host' })).toEqual([ids['l1'], ids['m1']]);
    expect(await resources({ blueprintId: globalId('Blueprint', ids['linux']!) })).toEqual([ids['l1']]);
    expect(await resources({ attributes: { cores: 8, platform: 'macos' } })).toEqual([ids['m1']]);
    expect(await resources({ status: ['PENDING'] })).toEqual([]);
  });

  it('pages through a list with stable cursors', async () => {
    const first = await graphqlRequest<{ leases: { edges: { cursor: string; node: { databaseId: number } }[] } }>(
      app.graphqlUrl,
      '{ leases(first: 2) { edges { cursor node { databaseId } } } }',
    );
    const edges = first.body.data!.leases.edges;
    expect(edges.map((edge) => edge.node.databaseId)).toEqual([ids['a'], ids['b']]);
    const next = await graphqlRequest<{ leases: { edges: { node: { databaseId: number } }[] } }>(
      app.graphqlUrl,
      'query ($after: String) { leases(first: 2, after: $after) { edges { node { databaseId } } } }',
      { after: edges[1]!.cursor },
    );
    expect(next.body.data!.leases.edges.map((edge) => edge.node.databaseId)).toEqual([ids['c']]);
  });
});
