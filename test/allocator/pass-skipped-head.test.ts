import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// Regression for the model check's NO_SKIP_RETRY counterexample: a pass skips a waiting lease
// another transaction holds (SKIP LOCKED); if that transaction then rolls back instead of asking
// for a pass itself (a lease update whose process died), the lease must still be served, with no
// other event of its type to bring the pass back. Needs two connections: PostgreSQL only.

class RollBack extends Error {}

describePostgres('a pass that skipped a locked head', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql');
  });
  afterAll(() => h.dispose());

  it('looks again by itself after the holder rolls back', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'slots',
        implementation: 'test',
        config: { exclusive: true, maxResources: 1 },
      }),
    );
    // Queued while no worker runs: the pass it asked for is due but has not run.
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    let stop: (() => Promise<void>) | null = null;
    try {
      await h.db.prisma
        .$transaction(
          async (tx) => {
            await tx.$queryRaw`SELECT id FROM "Lease" WHERE id = ${lease.id} FOR NO KEY UPDATE`;
            const lockedAt = new Date();
            stop = h.services.worker.start({ concurrency: 2 }).stop;
            // Every pass due when the lock was taken has run (and skipped the lease).
            await waitFor(
              async () =>
                (await h.db.prisma.job.count({
                  where: { kind: 'SCHEDULING_PASS', runAt: { lte: lockedAt } },
                })) === 0,
              30_000,
            );
            expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('PENDING');
            throw new RollBack();
          },
          { timeout: 60_000, maxWait: 10_000 },
        )
        .catch((error: unknown) => {
          if (!(error instanceof RollBack)) throw error;
        });
      await waitForLease(h, lease.id, ['ACTIVE'], 30_000);
    } finally {
      await (stop as (() => Promise<void>) | null)?.();
    }
  });
});
