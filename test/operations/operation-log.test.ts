import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { collect, wsClient } from '../support/ws.js';

const SSH_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUtc2VjcmV0LWZvci1sb2dz\n-----END OPENSSH PRIVATE KEY-----\n';

type Line = Record<string, unknown> & { msg: string };

// PGlite only: what is logged does not depend on the database.
describe('the operation log', () => {
  let db: TestDatabase;
  let app: App;
  const lines: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    const logger = createLogger('info', { write: (line) => lines.push(line), format: 'json' });
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, logger);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  const operationLines = () =>
    lines.map((line) => JSON.parse(line) as Line).filter((line) => line.msg === 'graphql operation');

  it('writes one JSON line per operation (who, which, how long, outcome) and never a secret', async () => {
    const created = await graphqlRequest<{ createApiToken: { token: string } }>(
      app.graphqlUrl,
      `mutation MakeToken($input: CreateApiTokenInput!) { createApiToken(input: $input) { ... on CreateApiTokenPayload { token } } }`,
      { input: { name: 'ci-runner', principalName: 'ci' } },
    );
    const token = created.body.data!.createApiToken.token;
    expect(token).toBeTruthy();
    const asCi = { authorization: `Bearer ${token}` };

    await graphqlRequest(
      app.graphqlUrl,
      `mutation StoreKey($input: CreateCredentialInput!) { createCredential(input: $input) { __typename } }`,
      { input: { name: 'deploy-key', kind: 'SSH_KEY', secret: SSH_KEY } },
    );
    await graphqlRequest(app.graphqlUrl, `query MyLeases { leases { edges { node { id } } } }`, undefined, asCi);
    await graphqlRequest(app.graphqlUrl, `query Broken { leases { nope } }`, undefined, asCi);

    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      app.graphqlUrl,
      `mutation RequestOne { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }`,
      undefined,
      asCi,
    );
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${token}` });
    // Replayed from the start: the first entry of the lease's log arrives without waiting for news.
    await collect(
      client,
      {
        query: 'subscription Events($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor } }',
        variables: { id: leaseId },
      },
      (items) => items.length > 0,
    ).done;
    await client.dispose();

    await expect
      .poll(() => operationLines().map((line) => line['operation']))
      .toEqual(['MakeToken', 'StoreKey', 'MyLeases', 'Broken', 'RequestOne', 'Events']);
    const [makeToken, storeKey, myLeases, broken, , events] = operationLines();
    expect(makeToken).toMatchObject({ level: 'info', principal: 'local-admin', type: 'mutation', outcome: 'ok' });
    expect(storeKey).toMatchObject({ principal: 'local-admin', type: 'mutation', outcome: 'ok' });
    expect(myLeases).toMatchObject({ principal: 'ci', type: 'query', outcome: 'ok' });
    expect(broken).toMatchObject({ level: 'warn', type: 'query', outcome: 'invalid' });
    expect(events).toMatchObject({ principal: 'ci', type: 'subscription', outcome: 'ok' });
    for (const line of operationLines()) {
      expect(typeof line['durationMs']).toBe('number');
      expect(typeof line['time']).toBe('string');
    }

    const everything = lines.join('\n');
    expect(everything).not.toContain(token);
    expect(everything).not.toContain('b3BlbnNzaC1rZXktdjEAAAAABG5vbmUtc2VjcmV0LWZvci1sb2dz');
    expect(everything).not.toContain('deploy-key');
  });
});
