import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { leaseCountProblems } from '../model/snapshot.js';

// Resource."leaseCount" is kept by row-level triggers on Lease (see the lease_count_row_triggers
// migration); the allocation view reads it to find a pool's least-loaded resources.
describeEachDatabase('Resource.leaseCount, kept by the database', (kind) => {
  let db: TestDatabase;
  let r1: number;
  let r2: number;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const blueprint = await db.prisma.blueprint.create({
      data: { name: 'pool', implementation: 'host-pool', resourceType: 'host' },
    });
    const resource = (name: string) =>
      db.prisma.resource.create({ data: { blueprintId: blueprint.id, type: 'host', name, status: 'ACTIVE' } });
    r1 = (await resource('r1')).id;
    r2 = (await resource('r2')).id;
  });
  afterAll(() => db.dispose());

  const counts = async () =>
    Object.fromEntries(
      (await db.prisma.resource.findMany({ orderBy: { id: 'asc' } })).map((r) => [r.name, r.leaseCount]),
    );
  const lease = (data: { status?: 'PENDING' | 'ACTIVE'; resourceId?: number } = {}) =>
    db.prisma.lease.create({ data: { resourceType: 'host', ...data } });

  it('counts the ACQUIRED and ACTIVE leases on each resource through every kind of write', async () => {
    const waiting = await lease();
    await lease({ status: 'ACTIVE', resourceId: r1 });
    expect(await counts()).toEqual({ r1: 1, r2: 0 });

    await db.prisma.lease.update({ where: { id: waiting.id }, data: { status: 'ACQUIRED', resourceId: r1 } });
    expect(await counts()).toEqual({ r1: 2, r2: 0 });
    // Same resource, still counted: no change.
    await db.prisma.lease.update({ where: { id: waiting.id }, data: { status: 'ACTIVE' } });
    expect(await counts()).toEqual({ r1: 2, r2: 0 });
    // Updates that move nothing.
    await db.prisma.lease.updateMany({ data: { blocker: { reason: 'x' }, lastSeenAt: new Date() } });
    expect(await counts()).toEqual({ r1: 2, r2: 0 });
    await db.prisma.lease.update({ where: { id: waiting.id }, data: { resourceId: r2 } });
    expect(await counts()).toEqual({ r1: 1, r2: 1 });

    // Several leases in one statement, on different resources.
    await lease({ status: 'ACTIVE', resourceId: r2 });
    await db.prisma.lease.updateMany({ where: { status: 'ACTIVE' }, data: { status: 'RELEASED' } });
    expect(await counts()).toEqual({ r1: 0, r2: 0 });

    const gone = await lease({ status: 'ACTIVE', resourceId: r2 });
    expect(await counts()).toEqual({ r1: 0, r2: 1 });
    await db.prisma.lease.delete({ where: { id: gone.id } });
    await db.prisma.lease.deleteMany({ where: { status: 'RELEASED' } });
    expect(await counts()).toEqual({ r1: 0, r2: 0 });
    expect(await leaseCountProblems(db)).toEqual([]);
  });

  it('the model test’s check finds a count that is off', async () => {
    await lease({ status: 'ACTIVE', resourceId: r1 });
    await db.prisma.resource.update({ where: { id: r1 }, data: { leaseCount: 3 } });
    expect(await leaseCountProblems(db)).toEqual([`resource ${r1} counts 3 live leases, 1 are on it`]);
  });
});
