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

  it('shares a per-object stream followed live among subscribers who see the same, and keeps others apart', async () => {
    const lease = await requestAs('alice', 'followed');
    const follow = 'subscription Follow($id: ID!) { leaseEvents(leaseId: $id) { cursor log { type } } }';
    type Event = { leaseEvents: { cursor: string; log: { type: string } } };
    const clients = {
      alice1: wsClient(app.graphqlUrl, { token: tokens.alice }),
      alice2: wsClient(app.graphqlUrl, { token: tokens.alice }),
      admin: wsClient(app.graphqlUrl, { token: tokens.admin }),
      bob: wsClient(app.graphqlUrl, { token: tokens.bob }),
    };
    const streams = Object.fromEntries(
      Object.entries(clients).map(([name, client]) => [
        name,
        collect<Event>(client, { query: follow, variables: { id: lease } }, (items) =>
          items.some((item) => item.leaseEvents.log.type.startsWith('lease-release')),
        ),
      ]),
    ) as Record<keyof typeof clients, ReturnType<typeof collect<Event>>>;
    // Bob may not see alice's lease: his subscription fails on its own and never joins hers.
    await expect(streams.bob.done).rejects.toThrow();
    const scrape = async () => (await fetch(`${app.url}/metrics`)).text();
    // Live only, the stream sends nothing until the release: in place once the server counts it.
    await waitFor(async () => /^drydock_subscription_cohort_members 3$/m.test(await scrape()));
    // Three subscribers, two executions: alice's two sockets share one.
    expect(await scrape()).toMatch(/^drydock_subscription_cohorts 2$/m);

    const { body } = await graphqlRequest<{ releaseLease: { __typename: string } }>(
      app.graphqlUrl,
      'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }',
      { id: lease },
      { authorization: `Bearer ${tokens.alice}` },
    );
    expect(body.data?.releaseLease.__typename, JSON.stringify(body)).toBe('ReleaseLeasePayload');
    const [alice1, alice2, admin] = await Promise.all([streams.alice1.done, streams.alice2.done, streams.admin.done]);
    // The two members of alice's cohort got the same messages; the admin's own execution the same events.
    expect(alice2).toEqual(alice1);
    expect(admin.map((event) => event.leaseEvents.cursor)).toEqual(alice1.map((event) => event.leaseEvents.cursor));
    await Promise.all(Object.values(clients).map((client) => client.dispose()));
    await waitFor(async () => {
      const metrics = await scrape();
      return (
        /^drydock_subscription_cohort_members 0$/m.test(metrics) &&
        /^drydock_subscriptions_open\{operation="Follow"\} 0$/m.test(metrics)
      );
    });
  });
});
