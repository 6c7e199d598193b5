import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';

// A waiting lease's blocker and log say what it waits behind or lost a slot to: another owner's
// lease ids are not its owner's to know (the queue shows others' leases anonymously). The rows are
// written as the allocator writes them, on a server with no worker, so nothing moves them.

const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');

describe("other owners' lease ids in a lease's blocker and log", () => {
  let db: TestDatabase;
  let app: App;
  const tokens = { alice: '', bob: '', admin: '' };
  let alicesLease = 0;
  let bobsOther = 0;
  let bobsLease = 0;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, workerConcurrency: 0 },
      createLogger('error', () => {}),
    );
    const alice = await principalWithToken(db, 'alice');
    const bob = await principalWithToken(db, 'bob');
    const admin = await principalWithToken(db, 'admin', { isAdmin: true });
    Object.assign(tokens, { alice: alice.token, bob: bob.token, admin: admin.token });
    alicesLease = (await db.prisma.lease.create({ data: { resourceType: 'box', ownerId: alice.principal.id } })).id;
    bobsOther = (await db.prisma.lease.create({ data: { resourceType: 'box', ownerId: bob.principal.id } })).id;
    const holders = [
      { key: `box.slot(${alicesLease})`, leaseId: alicesLease, resourceId: null },
      { key: `box.slot(${bobsOther})`, leaseId: bobsOther, resourceId: null },
    ];
    bobsLease = (
      await db.prisma.lease.create({
        data: {
          resourceType: 'box',
          ownerId: bob.principal.id,
          blocker: { reason: 'queued-behind', leaseId: alicesLease, holders },
          logs: { create: [{ type: 'slot-lock-failure', data: { holders } }] },
        },
      })
    ).id;
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  const read = async (who: keyof typeof tokens) => {
    const { body } = await graphqlRequest<{
      lease: { blocker: { message: string; details: unknown }; logs: { data: unknown }[] };
    }>(
      app.graphqlUrl,
      'query ($id: ID!) { lease(id: $id) { blocker { message details } logs { data } } }',
      { id: gid('Lease', bobsLease) },
      { authorization: `Bearer ${tokens[who]}` },
    );
    return body.data!.lease;
  };

  it('its owner sees its own other lease, and null for another owner’s', async () => {
    const lease = await read('bob');
    const holders = [
      { key: `box.slot(${alicesLease})`, leaseId: null, resourceId: null },
      { key: `box.slot(${bobsOther})`, leaseId: bobsOther, resourceId: null },
    ];
    expect(lease.blocker).toEqual({
      message: 'queued behind another lease, which asks for the same and is served first',
      details: { leaseId: null, holders },
    });
    expect(lease.logs).toEqual([{ data: { holders } }]);
  });

  it('an admin sees them all', async () => {
    const lease = await read('admin');
    expect(lease.blocker.message).toBe(
      `queued behind lease ${alicesLease}, which asks for the same and is served first`,
    );
    expect(lease.logs[0]!.data).toMatchObject({ holders: [{ leaseId: alicesLease }, { leaseId: bobsOther }] });
  });
});
