import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { generateToken } from '../src/auth/tokens.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { createTestBlueprint, TestBlueprintControl } from './support/test-blueprint.js';

const quiet = createLogger('error', () => {});
const hosts = (platform: string) => ({
  services: [
    { name: 's', bindings: [{ name: `${platform}-1`, address: '10.0.0.1', port: 22, attributes: { platform } }] },
  ],
});

type Candidates = {
  leaseCandidates: {
    wouldBeServed: boolean;
    unseenBlueprints: number;
    blueprints: {
      blueprint: { name: string } | null;
      blueprintDatabaseId: number;
      usable: boolean;
      reason: string | null;
      canAllocateNow: boolean | null;
    }[];
  };
};
const candidatesQuery = `query ($input: LeaseCandidatesInput!) { leaseCandidates(input: $input) {
  ... on LeaseCandidatesPayload { wouldBeServed unseenBlueprints blueprints { blueprint { name } blueprintDatabaseId usable reason canAllocateNow resources { usable reason } } }
  ... on Error { message } } }`;

describeEachDatabase('dry run and "why am I waiting"', (kind) => {
  let db: TestDatabase;
  let app: App;
  let bobToken: string;
  const control = new TestBlueprintControl();

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet, {
      implementations: [createTestBlueprint(control)],
    });
    const create = (name: string, implementation: string, config: unknown) =>
      graphqlRequest(
        app.graphqlUrl,
        `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { __typename ... on Error { message } } }`,
        { input: { name, implementation, config } },
      );
    await create('linux', 'host-pool', hosts('linux'));
    await create('mac', 'host-pool', hosts('macos'));
    await create('spare', 'host-pool', hosts('linux'));
    await create('slow', 'test', { activation: 'later' });
    await graphqlRequest(
      app.graphqlUrl,
      `mutation ($id: ID!) { setBlueprintDisabled(id: $id, disabled: true) { __typename } }`,
      {
        id: Buffer.from('Blueprint:3').toString('base64'),
      },
    );
    const bob = await db.prisma.principal.create({ data: { name: 'bob', kind: 'USER' } });
    const token = generateToken();
    await db.prisma.apiToken.create({
      data: { principalId: bob.id, name: 'bob', tokenHash: token.hash, prefix: token.prefix },
    });
    bobToken = token.token;
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('says which blueprints would serve a request and why the others would not, creating nothing', async () => {
    const { body } = await graphqlRequest<Candidates>(app.graphqlUrl, candidatesQuery, {
      input: { resourceType: 'host', attributes: { platform: 'linux' } },
    });
    expect(body.errors).toBeUndefined();
    const byName = Object.fromEntries(body.data!.leaseCandidates.blueprints.map((b) => [b.blueprint!.name, b]));
    expect(byName['linux']).toMatchObject({ usable: true, reason: null, canAllocateNow: true });
    expect(byName['mac']).toMatchObject({
      usable: false,
      reason: 'attribute "platform": the lease wants "linux", enabled bindings have "macos"',
    });
    expect(byName['spare']).toMatchObject({ usable: false, reason: 'disabled' });
    expect(byName['slow']).toBeUndefined();
    expect(body.data!.leaseCandidates.wouldBeServed).toBe(true);
    expect(await db.prisma.lease.count()).toBe(0);
    expect(await db.prisma.resource.count()).toBe(0);
  });

  it('tells a principal without authorizations that blueprints it may not see exist, naming none of them', async () => {
    const asBob = () =>
      graphqlRequest<Candidates>(
        app.graphqlUrl,
        candidatesQuery,
        { input: { resourceType: 'host', attributes: { platform: 'linux' } } },
        { authorization: `Bearer ${bobToken}` },
      );
    // linux, mac and spare yield hosts; bob may see none of them, so none is named, not even by id.
    const { body } = await asBob();
    expect(body.errors).toBeUndefined();
    expect(body.data!.leaseCandidates).toMatchObject({ wouldBeServed: false, blueprints: [], unseenBlueprints: 3 });

    // Authorized on linux, he sees it and its verdict; the other two are still only counted.
    const bob = await db.prisma.principal.findUniqueOrThrow({ where: { name: 'bob' } });
    await db.prisma.authorization.create({
      data: { blueprintId: 1, principalId: bob.id, blueprintState: 'AUTHORIZED' },
    });
    try {
      const authorized = (await asBob()).body.data!.leaseCandidates;
      expect(authorized.blueprints.map((b) => [b.blueprintDatabaseId, b.blueprint?.name, b.usable])).toEqual([
        [1, 'linux', true],
      ]);
      expect(authorized).toMatchObject({ wouldBeServed: true, unseenBlueprints: 2 });
    } finally {
      await db.prisma.authorization.deleteMany({ where: { principalId: bob.id } });
    }
  });

  it('answers a bad dry run with a ValidationError', async () => {
    const { body } = await graphqlRequest<{ leaseCandidates: { __typename: string; path?: string[] } }>(
      app.graphqlUrl,
      `{ leaseCandidates(input: { resourceType: "" }) { __typename ... on ValidationError { path } } }`,
    );
    expect(body.data?.leaseCandidates).toEqual({ __typename: 'ValidationError', path: ['resourceType'] });
  });

  it('shows a pending lease what it waits for, then nothing once it is active', async () => {
    control.gated = true;
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      app.graphqlUrl,
      'mutation { requestLease(input: { resourceType: "test-slot" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    const blockerQuery = `query ($id: ID!) { lease(id: $id) { status blocker { reason message queuePosition resource { databaseId status } } } }`;
    type Blocked = {
      lease: {
        status: string;
        blocker: {
          reason: string;
          message: string;
          queuePosition: number | null;
          resource: { databaseId: number; status: string } | null;
        } | null;
      };
    };
    let lease: Blocked['lease'] | undefined;
    for (let i = 0; i < 100; i++) {
      lease = (await graphqlRequest<Blocked>(app.graphqlUrl, blockerQuery, { id: leaseId })).body.data!.lease;
      if (lease.blocker) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The resource opens later: the lease waits for its setup, PENDING or already ACQUIRED on it
    // depending on how far the allocator got; only a PENDING lease has a place in the queue.
    expect(['PENDING', 'ACQUIRED']).toContain(lease?.status);
    expect(lease?.blocker).toMatchObject({
      reason: 'waiting-for-resource-activation',
      resource: { status: 'PENDING' },
    });
    expect([1, null]).toContain(lease?.blocker?.queuePosition);
    expect(lease?.blocker?.message).toMatch(/waiting for resource \d+ to finish setting up/);

    control.opened.add(lease!.blocker!.resource!.databaseId);
    control.gated = false;
    for (let i = 0; i < 200 && lease?.status !== 'ACTIVE'; i++) {
      await graphqlRequest(app.graphqlUrl, 'mutation ($id: ID!) { updateResource(id: $id) { __typename } }', {
        id: Buffer.from(`Resource:${control.opened.values().next().value}`).toString('base64'),
      });
      lease = (await graphqlRequest<Blocked>(app.graphqlUrl, blockerQuery, { id: leaseId })).body.data!.lease;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(lease).toMatchObject({ status: 'ACTIVE', blocker: null });
  });

  it('gives waiting leases their place in the queue, oldest first', async () => {
    await graphqlRequest(
      app.graphqlUrl,
      // The limit slot lock, not the implementation's own count, is what holds under racing allocators.
      `mutation { createBlueprint(input: { name: "solo", implementation: "test", resourceLimit: 1, config: { exclusive: true, label: "solo" } }) { __typename } }`,
    );
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      app.graphqlUrl,
      'mutation { requestLease(input: { resourceType: "test-slot", attributes: { label: "solo" }, count: 3 }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const ids = requested.body.data!.requestLease.leases.map((lease) => lease.id);
    type Row = { status: string; blocker: { reason: string; queuePosition: number | null } | null };
    let rows: Row[] = [];
    for (let i = 0; i < 200; i++) {
      rows = await Promise.all(
        ids.map(
          async (id) =>
            (
              await graphqlRequest<{ lease: Row }>(
                app.graphqlUrl,
                'query ($id: ID!) { lease(id: $id) { status blocker { reason queuePosition } } }',
                { id },
              )
            ).body.data!.lease,
        ),
      );
      if (rows.filter((row) => row.status === 'ACTIVE').length === 1 && rows.filter((row) => row.blocker).length === 2)
        break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const waiting = rows.filter((row) => row.status === 'PENDING');
    expect(rows.filter((row) => row.status === 'ACTIVE')).toHaveLength(1);
    expect(waiting.map((row) => row.blocker?.queuePosition)).toEqual([1, 2]);
    expect(waiting.every((row) => row.blocker?.reason)).toBe(true);
  });
});
