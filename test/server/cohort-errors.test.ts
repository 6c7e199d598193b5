import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { Cohorts } from '../../src/server/cohorts.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { principalWithToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';
import { wsClient } from '../support/ws.js';

const quiet = createLogger('error', () => {});
const globalId = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');

/** Everything a stock graphql-ws client's sink is told about one subscription, in order, until it ends. */
type Told = { next: unknown } | { error: unknown } | 'complete';
function answer(client: Client, query: string): Promise<Told[]> {
  const told: Told[] = [];
  return new Promise((resolve) => {
    client.subscribe(
      { query },
      {
        next: (value) => void told.push({ next: value }),
        error: (error) => {
          told.push({ error });
          resolve(told);
        },
        complete: () => {
          told.push('complete');
          resolve(told);
        },
      },
    );
  });
}

describe('a cohort whose execution fails', () => {
  it('throws the execution’s own error to every member, after what it had already sent them', async () => {
    const failure = new GraphQLError('lease 2 does not exist', { extensions: { code: 'NotFoundError' } });
    // Each step of the execution waits for the test: both members are in before the first result.
    const steps: (() => void)[] = [];
    const step = () => new Promise<void>((resolve) => steps.push(resolve));
    async function* execution(): AsyncGenerator<ExecutionResult> {
      await step();
      yield { data: { n: 1 } };
      await step();
      throw failure;
    }
    const cohorts = new Cohorts();
    const running = execution();
    const waiting = (await cohorts.join('k', () => running)) as AsyncIterableIterator<ExecutionResult>;
    const later = (await cohorts.join('k', () => running)) as AsyncIterableIterator<ExecutionResult>;
    expect(cohorts.size).toEqual({ cohorts: 1, members: 2 });
    await waitFor(() => steps.length === 1);
    steps[0]!();
    expect((await waiting.next()).value).toEqual({ data: { n: 1 } });
    const pending = waiting.next();
    await waitFor(() => steps.length === 2);
    steps[1]!();
    // One member was waiting for its next result, the other reads the one it missed afterwards.
    await expect(pending).rejects.toBe(failure);
    expect(await later.next()).toEqual({ value: { data: { n: 1 } }, done: false });
    await expect(later.next()).rejects.toBe(failure);
    expect(cohorts.size).toEqual({ cohorts: 0, members: 0 });
  });
});

describeEachDatabase('a shared subscription execution that fails', (kind) => {
  let db: TestDatabase;
  let app: App;
  const tokens = { alice: '', bob: '' };
  let aliceLease = '';
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, workerConcurrency: 0 }, quiet);
    const alice = await principalWithToken(db, 'alice');
    tokens.alice = alice.token;
    tokens.bob = (await principalWithToken(db, 'bob')).token;
    const blueprint = await db.prisma.blueprint.create({
      data: {
        name: 'hosts',
        implementation: 'host-pool',
        resourceType: 'host',
        config: { services: [{ name: 's', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }] },
      },
    });
    await db.prisma.authorization.create({
      data: { blueprintId: blueprint.id, principalId: alice.principal.id, blueprintState: 'AUTHORIZED' },
    });
    const { body } = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      app.graphqlUrl,
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } ... on Error { message } } }',
      {},
      { authorization: `Bearer ${tokens.alice}` },
    );
    aliceLease = body.data?.requestLease.leases[0]?.id ?? '';
    expect(aliceLease, JSON.stringify(body)).toBeTruthy();
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it.each([
    ['a lease bob may not see', () => aliceLease],
    ['a lease id that names nothing', () => globalId('Lease', 999_999)],
  ])('refuses %s with the same error message shared as unshared, never as a result and complete', async (_, lease) => {
    const clients = [0, 1, 2].map(() => wsClient(app.graphqlUrl, { token: tokens.bob }));
    try {
      const subscription = (after: string) => `subscription { leaseEvents(leaseId: "${lease()}"${after}) { cursor } }`;
      // `after` makes a subscription replay from its own cursor, so it never shares an execution.
      const unshared = await answer(clients[0]!, subscription(', after: "0"'));
      // Two subscribers at once: one execution, whose failure reaches both.
      const shared = await Promise.all(clients.slice(1).map((client) => answer(client, subscription(''))));

      expect(unshared).toEqual([
        { error: [{ message: expect.stringMatching(/does not exist/), extensions: { code: 'NotFoundError' } }] },
      ]);
      for (const told of shared) expect(told).toEqual(unshared);
    } finally {
      await Promise.all(clients.map((client) => client.dispose()));
    }
  });
});
