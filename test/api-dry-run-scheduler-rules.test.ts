import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { createTestBlueprint } from './support/test-blueprint.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';

// The dry run answers as the scheduling pass would serve the lease now: a draining resource, a
// blueprint at its resource limit and a requester at its quota each make the lease wait, so the
// dry run must not say it would be served. Each case then asks for the lease for real, to see the
// scheduler make it wait for the same thing.

const quiet = createLogger('error', () => {});
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
const hosts = (pool: string, maintenance = false) => ({
  services: [
    {
      name: 's',
      bindings: [{ name: `${pool}-1`, address: '10.0.0.1', port: 22, attributes: { pool }, maintenance }],
    },
  ],
});

type DryRun = {
  wouldBeServed: boolean;
  blocker: { reason: string; message: string; details: Record<string, unknown> } | null;
  blueprints: {
    blueprintDatabaseId: number;
    usable: boolean;
    reason: string | null;
    canAllocateNow: boolean | null;
    cannotAllocateNowReason: string | null;
    resources: { resourceDatabaseId: number; usable: boolean; reason: string | null }[];
  }[];
};
const dryRunQuery = `query ($input: LeaseCandidatesInput!) { leaseCandidates(input: $input) {
  ... on LeaseCandidatesPayload { wouldBeServed blocker { reason message details }
    blueprints { blueprintDatabaseId usable reason canAllocateNow cannotAllocateNowReason
      resources { resourceDatabaseId usable reason } } }
  ... on Error { message } } }`;

describeEachDatabase('dry run as the scheduler decides', (kind) => {
  let db: TestDatabase;
  let app: App;
  let carol: { id: number; token: string };

  /** As the local admin, or as the holder of `token`; throws on any GraphQL error. */
  const call = async <T>(query: string, variables: Record<string, unknown> = {}, token?: string) => {
    const { body } = await graphqlRequest<T>(
      app.graphqlUrl,
      query,
      variables,
      token ? { authorization: `Bearer ${token}` } : {},
    );
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };
  const dryRun = async (input: Record<string, unknown>, token?: string) =>
    (await call<{ leaseCandidates: DryRun }>(dryRunQuery, { input }, token)).leaseCandidates;
  const createBlueprint = async (input: Record<string, unknown>) =>
    (
      await call<{ createBlueprint: { blueprint: { databaseId: number } } }>(
        `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) {
          ... on BlueprintPayload { blueprint { databaseId } } } }`,
        { input },
      )
    ).createBlueprint.blueprint.databaseId;
  const requestLease = async (input: Record<string, unknown>, token?: string) =>
    (
      await call<{ requestLease: { leases: { databaseId: number }[] } }>(
        `mutation ($input: RequestLeaseInput!) { requestLease(input: $input) {
          ... on RequestLeasePayload { leases { databaseId } } } }`,
        { input },
        token,
      )
    ).requestLease.leases[0]!.databaseId;
  const leaseRow = (id: number) => db.prisma.lease.findUniqueOrThrow({ where: { id } });
  const activeOn = async (leaseId: number) =>
    (await waitFor(async () => {
      const lease = await leaseRow(leaseId);
      return lease.status === 'ACTIVE' && lease;
    }))!.resourceId!;
  /** The reason the scheduler recorded on a waiting lease, once it has recorded one. */
  const waitsFor = (leaseId: number) =>
    waitFor(async () => {
      const lease = await leaseRow(leaseId);
      return lease.status === 'PENDING' && (lease.blocker as { reason?: string } | null)?.reason;
    });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet, {
      implementations: [createTestBlueprint()],
    });
    const made = await principalWithToken(db, 'carol');
    carol = { id: made.principal.id, token: made.token };
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('names a draining resource, by an operator or for maintenance, and does not count it', async () => {
    const blueprintId = await createBlueprint({ name: 'drained', implementation: 'host-pool', config: hosts('drain') });
    const input = { resourceType: 'host', attributes: { pool: 'drain' } };
    const resourceId = await activeOn(await requestLease(input));
    // Shared and idle enough to take another lease: the dry run says so before the drain.
    expect((await dryRun(input)).wouldBeServed).toBe(true);

    await call('mutation ($id: ID!) { drainResource(id: $id) { __typename } }', { id: gid('Resource', resourceId) });
    const drained = await dryRun(input);
    expect(drained.blueprints).toEqual([
      expect.objectContaining({
        blueprintDatabaseId: blueprintId,
        usable: true,
        canAllocateNow: false,
        resources: [{ resourceDatabaseId: resourceId, usable: false, reason: expect.stringMatching(/^draining: /) }],
      }),
    ]);
    expect(drained.wouldBeServed).toBe(false);
    // The scheduler agrees: the lease waits, and for the drain.
    const waiting = await requestLease(input);
    expect(await waitsFor(waiting)).toBe('draining');
    expect(await db.prisma.lease.count()).toBe(2);

    await call('mutation ($id: ID!) { undrainResource(id: $id) { __typename } }', { id: gid('Resource', resourceId) });
    expect(await activeOn(waiting)).toBe(resourceId);
    // The binding goes into maintenance: the blueprint's config drains the host.
    await call(
      'mutation ($id: ID!, $input: UpdateBlueprintInput!) { updateBlueprint(id: $id, input: $input) { __typename } }',
      {
        id: gid('Blueprint', blueprintId),
        input: { config: hosts('drain', true) },
      },
    );
    const maintained = await dryRun(input);
    expect(maintained.blueprints.find((b) => b.blueprintDatabaseId === blueprintId)!.resources).toEqual([
      { resourceDatabaseId: resourceId, usable: false, reason: expect.stringMatching(/^draining for maintenance: /) },
    ]);
    expect(maintained.wouldBeServed).toBe(false);
  });

  it('says a blueprint at its resource limit cannot build now, and why', async () => {
    const blueprintId = await createBlueprint({
      name: 'capped',
      implementation: 'test',
      resourceLimit: 1,
      config: { exclusive: true, label: 'capped' },
    });
    const input = { resourceType: 'test-slot', attributes: { label: 'capped' } };
    expect((await dryRun(input)).blueprints).toEqual([
      expect.objectContaining({
        blueprintDatabaseId: blueprintId,
        canAllocateNow: true,
        cannotAllocateNowReason: null,
      }),
    ]);
    const resourceId = await activeOn(await requestLease(input));

    // Its implementation would build another (its own count allows 1000); its limit would not.
    const capped = await dryRun(input);
    expect(capped.blueprints).toEqual([
      {
        blueprintDatabaseId: blueprintId,
        usable: true,
        reason: null,
        canAllocateNow: false,
        cannotAllocateNowReason: 'at its resource limit of 1 live resources',
        resources: [{ resourceDatabaseId: resourceId, usable: false, reason: 'a slot it needs is held' }],
      },
    ]);
    expect(capped.wouldBeServed).toBe(false);
    const resources = await db.prisma.resource.count({ where: { blueprintId } });
    const waiting = await requestLease(input);
    expect(['no-capacity', 'slot-lock-failure']).toContain(await waitsFor(waiting));
    expect(await db.prisma.resource.count({ where: { blueprintId } })).toBe(resources);
  });

  it("tells a requester at its quota of the type that the lease would wait, as the lease's blocker would", async () => {
    const blueprintId = await createBlueprint({
      name: 'rationed',
      implementation: 'host-pool',
      config: hosts('quota'),
    });
    await db.prisma.authorization.create({
      data: { blueprintId, principalId: carol.id, blueprintState: 'AUTHORIZED' },
    });
    await call('mutation ($p: ID!) { setQuota(principalId: $p, resourceType: "host", maxLeases: 1) { __typename } }', {
      p: gid('Principal', carol.id),
    });
    const input = { resourceType: 'host', attributes: { pool: 'quota' } };
    expect(await dryRun(input, carol.token)).toMatchObject({ wouldBeServed: true, blocker: null });
    await activeOn(await requestLease(input, carol.token));

    const atQuota = await dryRun(input, carol.token);
    expect(atQuota.blocker).toEqual({
      reason: 'quota',
      message: 'at its quota of 1 live leases of this type',
      details: { quota: 1, live: 1 },
    });
    expect(atQuota.wouldBeServed).toBe(false);
    // The host itself would take the lease: only the quota holds it back.
    expect(atQuota.blueprints.find((b) => b.blueprintDatabaseId === blueprintId)!.resources).toEqual([
      expect.objectContaining({ usable: true }),
    ]);
    // The local admin has no quota: the same request would be served for it.
    expect(await dryRun(input)).toMatchObject({ wouldBeServed: true, blocker: null });

    const waiting = await requestLease(input, carol.token);
    expect(await waitsFor(waiting)).toBe('quota');
  });
});
