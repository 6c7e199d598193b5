import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, type Harness } from '../support/allocator-harness.js';
import { contendWithHeldLease, twoSlotGang } from '../support/row-locks.js';

// A heartbeat through one part of a gang sees all its parts. Its statement must lock them in id
// order, as the release and the pass do: in the order a scan finds them (a part's row moved by an
// update comes after the others) it could hold one part while waiting for another that a release
// holds while waiting for the first.

describePostgres('a gang’s heartbeat beside a transaction locking its parts in id order', () => {
  let h: Harness;
  // A deadlock would be retried (deadlocks.ts) and hide the fault: none may happen.
  const retries: unknown[] = [];
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 4, deadlocks: { retried: (retry) => retries.push(retry) } });
  });
  afterAll(() => h.dispose());

  it('takes the parts’ locks in id order: no deadlock, both commit', async () => {
    await h.reset();
    const { first, second } = await twoSlotGang(h, { heartbeatSeconds: 60 });
    // The first part's row now lies after the second's (a non-HOT update: priority is indexed).
    await h.db.prisma.$executeRaw`UPDATE "Lease" SET priority = 1, "updatedAt" = now() WHERE id = ${first.id}`;
    const beat = await contendWithHeldLease(
      h.db.prisma,
      first.id,
      () => h.services.leases.heartbeat(h.system, second.id),
      (tx) => tx.$queryRaw`SELECT id FROM "Lease" WHERE id = ${second.id} FOR NO KEY UPDATE`,
    );
    expect(beat).toMatchObject({ ok: true });
    expect(retries).toEqual([]);
  });
});
