import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';
import { collect, wsClient } from './support/ws.js';

const quiet = createLogger('error', () => {});
const dashboard = 'subscription Dashboard { leasesChanged { id attributes } }';
type Seen = { leasesChanged: { id: string; attributes: { secret: string } } };

describeEachDatabase('subscription cohorts', (kind) => {
  let db: TestDatabase;
  let app: App;
  const tokens: Record<'alice' | 'bob' | 'admin', string> = { alice: '', bob: '', admin: '' };
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, workerConcurrency: 0 }, quiet);
    tokens.admin = (await principalWithToken(db, 'root', { isAdmin: true })).token;
    const alice = await principalWithToken(db, 'alice');
    const bob = await principalWithToken(db, 'bob');
    tokens.alice = alice.token;
    tokens.bob = bob.token;
    const blueprint = await db.prisma.blueprint.create({
      data: {
        name: 'hosts',
        implementation: 'host-pool',
        resourceType: 'host',
        config: { services: [{ name: 's', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22 }] }] },
      },
    });
    for (const principal of [alice.principal, bob.principal]) {
      await db.prisma.authorization.create({
        data: { blueprintId: blueprint.id, principalId: principal.id, blueprintState: 'AUTHORIZED' },
      });
    }
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  const requestAs = async (who: 'alice' | 'bob', secret: string) => {
    const { body } = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      app.graphqlUrl,
      'mutation ($a: JSON) { requestLease(input: { resourceType: "host", attributes: $a }) { ... on RequestLeasePayload { leases { id } } ... on Error { message } } }',
      { a: { secret } },
      { authorization: `Bearer ${tokens[who]}` },
    );
    const id = body.data?.requestLease.leases?.[0]?.id;
    expect(id, JSON.stringify(body)).toBeTruthy();
    return id!;
  };

  it('shares one execution among subscribers who see the same, and never hands one principal another’s payload', async () => {
    const clients = {
      alice1: wsClient(app.graphqlUrl, { token: tokens.alice }),
      alice2: wsClient(app.graphqlUrl, { token: tokens.alice }),
      bob: wsClient(app.graphqlUrl, { token: tokens.bob }),
      admin: wsClient(app.graphqlUrl, { token: tokens.admin }),
    };
    const streams = Object.fromEntries(
      Object.entries(clients).map(([name, client]) => [name, collect<Seen>(client, { query: dashboard })]),
    ) as Record<keyof typeof clients, ReturnType<typeof collect<Seen>>>;
    const ids = (name: keyof typeof clients) => streams[name].items.map((item) => item.leasesChanged.id);

    // Subscribed once a change reaches them: each probe is a new lease, until one reached every
    // subscriber who may see it.
    const probeUntilSeen = async (who: 'alice' | 'bob', by: (keyof typeof clients)[]) => {
      const probes: string[] = [];
      await waitFor(async () => {
        probes.push(await requestAs(who, `${who}-only`));
        return by.every((name) => ids(name).some((id) => probes.includes(id)));
      });
    };
    await probeUntilSeen('alice', ['alice1', 'alice2', 'admin']);
    await probeUntilSeen('bob', ['bob', 'admin']);
    const aliceLease = await requestAs('alice', 'alice-only');
    await waitFor(() => ['alice1', 'alice2', 'admin'].every((name) => ids(name as never).includes(aliceLease)));

    // Four subscribers, three executions: alice's two sockets share one.
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/^drydock_subscriptions_open\{operation="Dashboard"\} 3$/m);

    const secrets = (name: keyof typeof clients) =>
      new Set(streams[name].items.map((i) => i.leasesChanged.attributes.secret));
    expect(secrets('alice1')).toEqual(new Set(['alice-only']));
    expect(secrets('alice2')).toEqual(new Set(['alice-only']));
    expect(secrets('bob')).toEqual(new Set(['bob-only']));
    expect(secrets('admin')).toEqual(new Set(['alice-only', 'bob-only']));
    expect(ids('alice2').filter((id) => ids('alice1').includes(id)).length).toBeGreaterThan(0);
    for (const stream of Object.values(streams)) stream.stop();
    await Promise.all(Object.values(clients).map((client) => client.dispose()));
    // The shared execution ends with its last member.
    await waitFor(async () =>
      /^drydock_subscriptions_open\{operation="Dashboard"\} 0$/m.test(await (await fetch(`${app.url}/metrics`)).text()),
    );
  });
});
