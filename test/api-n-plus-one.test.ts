import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';

const quiet = createLogger('error', () => {});

describePostgres('resolving a page of leases', () => {
  let db: TestDatabase;
  let app: App;
  let statements = 0;
  const realQuery = pg.Client.prototype.query;

  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 }, quiet);
    const blueprints = await Promise.all(
      [1, 2, 3].map((n) =>
        db.prisma.blueprint.create({ data: { name: `pool-${n}`, implementation: 'host-pool', resourceType: 'host' } }),
      ),
    );
    for (let i = 0; i < 100; i++) {
      const resource = await db.prisma.resource.create({
        data: { blueprintId: blueprints[i % 3]!.id, type: 'host', name: `host-${i}`, status: 'ACTIVE' },
      });
      await db.prisma.lease.create({ data: { resourceType: 'host', status: 'ACTIVE', resourceId: resource.id } });
    }
    // Counts every SQL statement the server sends while a request runs.
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      statements++;
      return (realQuery as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof realQuery;
  });
  afterAll(async () => {
    pg.Client.prototype.query = realQuery;
    await app.close();
    await db.dispose();
  });

  async function statementsFor(first: number): Promise<number> {
    await graphqlRequest(app.graphqlUrl, '{ viewer { name } }'); // warm the principal up
    statements = 0;
    const { body } = await graphqlRequest<{ leases: { edges: unknown[] } }>(
      app.graphqlUrl,
      `query ($first: Int!) { leases(first: $first) { edges { node { id status resource { name blueprint { name } } } } } }`,
      { first },
    );
    expect(body.errors).toBeUndefined();
    expect(body.data?.leases.edges).toHaveLength(first);
    return statements;
  }

  it('takes the same, small number of statements for 10 leases as for 100', async () => {
    const ten = await statementsFor(10);
    const hundred = await statementsFor(100);
    expect(hundred).toBe(ten);
    expect(hundred).toBeLessThanOrEqual(6);
  });
});
