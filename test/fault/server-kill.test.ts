// kill -9 a server process with open subscriptions and leases in flight: clients reconnect to
// another process and resume from their cursor with no lost or duplicated event, and every lease
// still settles.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { wsClient } from '../support/ws.js';

type Event = { cursor: string; log: { type: string } };
const LEASES = 24;
const subscription =
  'subscription ($id: ID!, $after: String) { leaseEvents(leaseId: $id, after: $after) { cursor log { type } } }';

/** Follows one lease; on a dropped connection, resumes from the last cursor on whatever server `url()` names. */
function follow(leaseId: string, url: () => string, until: (events: Event[]) => boolean) {
  const events: Event[] = [];
  let reconnects = 0;
  const done = (async () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      // What it waited for may have come before the connection dropped.
      if (attempt > 0 && until(events)) return;
      const client = wsClient(url());
      const after = events.at(-1)?.cursor ?? '0';
      const outcome = await new Promise<'done' | 'dropped'>((resolve) => {
        const stop = client.subscribe<{ leaseEvents: Event }>(
          { query: subscription, variables: { id: leaseId, after } },
          {
            next: (value) => {
              if (value.data) events.push(value.data.leaseEvents);
              if (until(events)) {
                stop();
                resolve('done');
              }
            },
            error: () => resolve('dropped'),
            complete: () => resolve(until(events) ? 'done' : 'dropped'),
          },
        );
      });
      await client.dispose();
      if (outcome === 'done') return;
      reconnects++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`lease ${leaseId}: gave up after 20 connections`);
  })();
  return { events, done, reconnects: () => reconnects };
}

describePostgres('kill -9 a server process', () => {
  let db: TestDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const env = { DATABASE_URL: db.url!, JOB_CLAIM_TTL_MS: '3000', LOG_LEVEL: 'warn' };
    a = await startServerProcess(env);
    b = await startServerProcess(env);
  });
  afterAll(async () => {
    await a?.stop('SIGKILL');
    await b?.stop('SIGTERM');
    await db?.dispose();
  });

  it('loses and duplicates no event, and every lease settles', async () => {
    let current = `${a.url}/graphql`;
    const bindings = Array.from({ length: 3 }, (_, i) => ({ name: `h${i}`, address: `10.0.0.${i + 1}`, port: 22 }));
    const created = await graphqlRequest(
      current,
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) { __typename } }`,
      { config: { services: [{ name: 's', bindings }] } },
    );
    expect(created.body.errors).toBeUndefined();

    const requests = Array.from({ length: LEASES }, () =>
      graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
        current,
        'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
      ),
    );
    const ids = (await Promise.all(requests)).map((r) => {
      expect(r.body.errors, `requestLease answered HTTP ${r.status}`).toBeUndefined();
      return r.body.data!.requestLease.leases[0]!.id;
    });
    // Judged by the log, not by `lease.status`, which is the lease as it is now, also in a replay.
    // Each follower stays connected until A is gone, so every one of them has a connection to lose.
    let killed = false;
    const untilActive = (events: Event[]) =>
      killed && events.some((e) => ['lease-activated', 'lease-broken', 'lease-destroyed'].includes(e.log.type));
    const followers = ids.map((id) => follow(id, () => current, untilActive));
    // Kill A once every subscriber is connected to it (it has had its lease's first entry), while its
    // worker may hold claims.
    await waitFor(() => followers.every((f) => f.events.length > 0), 30_000);
    expect(await a.stop('SIGKILL')).toBe('SIGKILL');
    killed = true;
    current = `${b.url}/graphql`;
    await Promise.all(followers.map((f) => f.done));
    expect(followers.every((f) => f.reconnects() > 0)).toBe(true);

    // Release everything through B and follow each lease to the end.
    const endings = ids.map((id) =>
      follow(
        id,
        () => current,
        (events) => events.some((e) => e.log.type === 'lease-destroyed'),
      ),
    );
    for (const id of ids) {
      await graphqlRequest(current, 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id });
    }
    await Promise.all(endings.map((f) => f.done));

    for (const [i, id] of ids.entries()) {
      const leaseId = Number(Buffer.from(id, 'base64').toString().split(':')[1]);
      const logs = await db.prisma.log.findMany({ where: { leaseId }, orderBy: { id: 'asc' }, select: { id: true } });
      const expected = logs.map((log) => log.id.toString());
      // Before the kill and after, resumed by cursor: exactly the lease's log, in order, once each.
      const seenBeforeRelease = followers[i]!.events.map((e) => e.cursor);
      expect(seenBeforeRelease).toEqual(expected.slice(0, seenBeforeRelease.length));
      expect(endings[i]!.events.map((e) => e.cursor)).toEqual(expected);
    }
    const lease = await db.prisma.lease.groupBy({ by: ['status'], _count: true });
    expect(lease).toEqual([{ status: 'DESTROYED', _count: LEASES }]);
    expect(await db.prisma.slotLock.count({ where: { ownerLeaseId: { not: null } } })).toBe(0);
  });
});
