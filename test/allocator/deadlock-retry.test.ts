import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { inTransaction } from '../../src/allocator/transaction.js';
import { describePostgres } from '../support/database.js';
import { bareAllocatorDeps, createHarness, type Harness } from '../support/allocator-harness.js';
import { contendWithHeldLease, twoSlotGang } from '../support/row-locks.js';

// PostgreSQL ends a deadlock by failing one of its transactions. When that is a caller's (a user's
// release, a service's transaction), it runs again: the other transaction, which won, has finished
// by then. Here the deadlock is made on purpose: a transaction holds a gang's second part and then
// locks the first, against the caller locking them in id order.

describePostgres('a caller’s transaction failed as a deadlock’s victim', () => {
  let h: Harness;
  const retries: { what: string; attempt: number }[] = [];
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 4, deadlocks: { retried: (retry) => retries.push(retry) } });
  });
  beforeEach(async () => {
    retries.length = 0;
    await h.reset();
  });
  afterAll(() => h.dispose());

  it('a release runs again and succeeds', async () => {
    const { first, second } = await twoSlotGang(h);
    const released = await contendWithHeldLease(
      h.db.prisma,
      second.id,
      () => h.services.leases.release(h.system, first.id),
      (tx) => tx.$queryRaw`SELECT id FROM "Lease" WHERE id = ${first.id} FOR NO KEY UPDATE`,
    );
    expect(released).toMatchObject({ ok: true });
    expect(retries).toEqual([{ what: 'release', attempt: 1 }]);
    // Written once, by the run that committed.
    expect(await h.db.prisma.command.count({ where: { kind: 'RELEASE' } })).toBe(2);
    expect(await h.db.prisma.log.count({ where: { type: 'lease-release-requested' } })).toBe(2);
  });

  it('a transaction of the Prisma client runs again, and what the failed run did is not kept', async () => {
    const { first, second } = await twoSlotGang(h);
    const deps = bareAllocatorDeps(h, { deadlocks: { retried: (retry) => retries.push(retry) } });
    let runs = 0;
    const outcome = await contendWithHeldLease(
      h.db.prisma,
      second.id,
      () =>
        inTransaction(deps, async (ctx) => {
          runs++;
          await ctx.tx.$executeRaw`UPDATE "Lease" SET priority = priority + 1 WHERE id = ${first.id}`;
          await ctx.tx.$executeRaw`UPDATE "Lease" SET priority = priority + 1 WHERE id = ${second.id}`;
          return 'done';
        }),
      (tx) => tx.$queryRaw`SELECT id FROM "Lease" WHERE id = ${first.id} FOR NO KEY UPDATE`,
    );
    expect(outcome).toBe('done');
    expect(runs).toBe(2);
    expect(retries).toEqual([{ what: 'transaction', attempt: 1 }]);
    const priorities = await h.db.prisma.lease.findMany({ orderBy: { id: 'asc' }, select: { priority: true } });
    expect(priorities).toEqual([{ priority: 1 }, { priority: 1 }]);
  });
});
