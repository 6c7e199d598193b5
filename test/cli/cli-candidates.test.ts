import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { waitFor } from '../support/wait.js';
import { runCli } from './run-cli.js';

// `drydock candidates` prints why the scheduler would make the lease wait: a draining resource, a
// blueprint at its resource limit, the requester at its quota.

const quiet = createLogger('error', () => {});
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
const pool = {
  services: [
    {
      name: 'ci',
      bindings: [
        { name: 'h1', address: '10.0.2.1', port: 22 },
        { name: 'h2', address: '10.0.2.2', port: 22 },
      ],
    },
  ],
};

describe('drydock candidates', () => {
  let db: TestDatabase;
  let app: App;
  let env: Record<string, string>;
  const call = async <T>(query: string, variables: Record<string, unknown> = {}) => {
    const { body } = await graphqlRequest<T>(app.graphqlUrl, query, variables);
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
    env = { DRYDOCK_URL: app.url };
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('names the drain, the resource limit and the quota that would make the lease wait', async () => {
    await call(
      `mutation ($config: JSON!) { createBlueprint(input: { name: "ci", implementation: "host-pool", resourceLimit: 1, config: $config }) { __typename } }`,
      { config: pool },
    );
    const requested = await call<{ requestLease: { leases: { databaseId: number }[] } }>(
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { databaseId } } } }',
    );
    const leaseId = requested.requestLease.leases[0]!.databaseId;
    const { resourceId } = await waitFor(async () => {
      const lease = await db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } });
      return lease.status === 'ACTIVE' && lease;
    });
    await call('mutation ($id: ID!) { drainResource(id: $id) { __typename } }', { id: gid('Resource', resourceId!) });

    const drained = await runCli(['candidates', '--type', 'host'], { env });
    expect(drained.code).toBe(1);
    expect(drained.stdout).toBe(
      [
        'blueprint 1 (ci, host-pool): usable, cannot build a new resource now (at its resource limit of 1 live resources)',
        `  resource ${resourceId}: draining: it takes no new lease until it is undrained`,
        'the lease would not be served now',
        '',
      ].join('\n'),
    );

    await call('mutation ($id: ID!) { undrainResource(id: $id) { __typename } }', { id: gid('Resource', resourceId!) });
    const me = await db.prisma.principal.findUniqueOrThrow({ where: { name: 'local-admin' } });
    await call('mutation ($p: ID!) { setQuota(principalId: $p, resourceType: "host", maxLeases: 1) { __typename } }', {
      p: gid('Principal', me.id),
    });
    const atQuota = await runCli(['candidates', '--type', 'host'], { env });
    expect(atQuota.code).toBe(1);
    expect(atQuota.stdout).toContain(`  resource ${resourceId}: would take the lease now\n`);
    expect(atQuota.stdout).toMatch(/the lease would not be served now: at its quota of 1 live leases of this type\n$/);
    const json = await runCli(['candidates', '--type', 'host', '--json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({
      wouldBeServed: false,
      blocker: { reason: 'quota', details: { quota: 1, live: 1 } },
    });
  });
});
