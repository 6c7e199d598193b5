import { afterAll, beforeAll, expect, it } from 'vitest';
import { readSnapshot } from '../../src/schema/snapshots.js';
import { createHarness, hostPoolConfig, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { describeEachDatabase } from '../support/database.js';

// The reads of a `*Changed` subscription's events go out together when asked for in the same tick
// (src/schema/snapshots.ts): each must still get its own object's row and newest log id.

describeEachDatabase('snapshots read together', (kind) => {
  let h: Harness;
  let stopWorker: () => Promise<void>;
  beforeAll(async () => {
    h = await createHarness(kind);
    stopWorker = h.services.worker.start({ concurrency: 2 }).stop;
  });
  afterAll(async () => {
    await stopWorker();
    await h.dispose();
  });

  it('answers each object of a batch with its own row and newest log id, in the order asked, an unknown id with none', async () => {
    await h.services.blueprints
      .create(h.system, { name: 'hosts', implementation: 'host-pool', config: hostPoolConfig(2) })
      .then(unwrap);
    const requested = await Promise.all(
      [0, 1].map(() => h.services.leases.request(h.system, { resourceType: 'host' }).then(unwrap)),
    );
    const leases = await Promise.all(requested.map((l) => waitForLease(h, l.id, ['ACTIVE'])));
    const newest = async (where: { leaseId?: number; resourceId?: number }) =>
      (await h.db.prisma.log.findFirstOrThrow({ where, orderBy: { id: 'desc' } })).id;

    const asked = [
      { kind: 'lease', id: leases[1]!.id },
      { kind: 'resource', id: leases[0]!.resourceId! },
      { kind: 'lease', id: leases[0]!.id },
      { kind: 'lease', id: 999_999 },
      { kind: 'lease', id: leases[1]!.id },
    ] as const;
    const answers = await Promise.all(asked.map((object) => readSnapshot(h.db, object)));

    expect(answers.map((a) => a.row?.['id'] ?? null)).toEqual([
      leases[1]!.id,
      leases[0]!.resourceId,
      leases[0]!.id,
      null,
      leases[1]!.id,
    ]);
    expect(answers.map((a) => a.cursor)).toEqual([
      await newest({ leaseId: leases[1]!.id }),
      await newest({ resourceId: leases[0]!.resourceId! }),
      await newest({ leaseId: leases[0]!.id }),
      0n,
      await newest({ leaseId: leases[1]!.id }),
    ]);
    expect(answers[0]!.row?.['status']).toBe('ACTIVE');
    // An id asked twice gets a row of its own: a subscriber may mark its copy.
    expect(answers[0]!.row).not.toBe(answers[4]!.row);
  });
});
