import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { hostPoolConfig } from '../support/allocator-harness.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { sample, scrape } from '../support/prometheus.js';
import { contendWithHeldLease } from '../support/row-locks.js';

// A user's release that PostgreSQL fails as a deadlock's victim is run again and answered as any
// release; the server says so in its log and counts it, since the allocator's lock order should
// have made it impossible. The deadlock is made on purpose: a transaction holds a gang's second
// part and then locks the first, against the release locking them in id order.

describePostgres('a deadlock retried behind the API', () => {
  let db: TestDatabase;
  let app: App;
  const lines: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    // No worker: the gang's parts stay PENDING, which a release accepts.
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 },
      createLogger('warn', (line) => lines.push(line)),
    );
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('answers the release, logs a warning and counts it in drydock_deadlock_retries_total', async () => {
    const blueprint = await graphqlRequest(
      app.graphqlUrl,
      `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { __typename } }`,
      {
        input: { name: 'two-hosts', implementation: 'host-pool', config: hostPoolConfig(2) },
      },
    );
    expect(blueprint.body.errors).toBeUndefined();
    const gang = await graphqlRequest<{ requestGang: { leases?: { id: string }[]; message?: string } }>(
      app.graphqlUrl,
      `mutation { requestGang(input: { parts: [{ resourceType: "host", count: 2 }] }) {
        ... on RequestLeasePayload { leases { id } } ... on Error { message } } }`,
    );
    expect(gang.body.data?.requestGang.leases).toHaveLength(2);
    const [first, second] = await db.prisma.lease.findMany({ orderBy: { id: 'asc' }, select: { id: true } });
    const firstGlobalId = gang.body.data!.requestGang.leases![0]!.id;
    expect(sample(await scrape(app.url), 'drydock_deadlock_retries_total', { what: 'release' })).toBeUndefined();

    const released = await contendWithHeldLease(
      db.prisma,
      second!.id,
      () =>
        graphqlRequest<{ releaseLease: { __typename: string } }>(
          app.graphqlUrl,
          `mutation ($id: ID!) { releaseLease(id: $id) { __typename } }`,
          { id: firstGlobalId },
        ),
      (tx) => tx.$queryRaw`SELECT id FROM "Lease" WHERE id = ${first!.id} FOR NO KEY UPDATE`,
    );
    expect(released).toMatchObject({ body: { data: { releaseLease: { __typename: 'ReleaseLeasePayload' } } } });
    expect((released as { body: { errors?: unknown } }).body.errors).toBeUndefined();
    expect(await db.prisma.command.count({ where: { kind: 'RELEASE' } })).toBe(2);
    expect(sample(await scrape(app.url), 'drydock_deadlock_retries_total', { what: 'release' })).toBe(1);
    const warned = lines.map((line) => JSON.parse(line) as { msg: string; what?: string; attempt?: number });
    expect(warned).toContainEqual(expect.objectContaining({ what: 'release', attempt: 1 }));
    expect(warned.find((line) => line.what === 'release')?.msg).toMatch(/deadlock/);
  });
});
