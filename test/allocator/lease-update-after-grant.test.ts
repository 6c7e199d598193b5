import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { updateLease } from '../../src/allocator/lease-update.js';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describePostgres } from '../support/database.js';
import {
  bareAllocatorDeps,
  createHarness,
  logTypes,
  queueIdOf,
  unwrap,
  type Harness,
} from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A lease's own update that waits for the lease's row lock while a pass builds a resource and
// grants the lease on it: the lock returns the lease as the pass committed it (ACQUIRED on the new
// resource), but the rest of that statement reads the snapshot taken before the wait, where the
// resource does not exist yet. The update must not take the resource for gone and send the lease
// back to PENDING, which builds another. PostgreSQL only: the update waits on a second connection.

describePostgres('a lease update that waited for the pass granting it', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 8 });
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  /** Statements of `updateLease` now waiting for a row lock. */
  const updatesWaiting = async () => {
    const [row] = await h.db.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'
        AND query LIKE '%UPDATE "Command" SET consumed%' AND query LIKE '%FROM "Lease" WHERE id%'`;
    return row!.n;
  };

  it('finds the lease on the resource the pass built, and builds no other', async () => {
    // Resources open only when the test says so: the granted one stays PENDING, the lease ACQUIRED.
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'slots',
        implementation: 'test',
        config: { activation: 'later' },
      }),
    );
    h.control.gated = true;
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const queueId = await queueIdOf(h, 'test-slot');
    const deps = bareAllocatorDeps(h);

    // The pass stops inside its transaction, holding the lease's row lock, before it builds.
    const { paused, resume } = h.control.pauseNextAllocate();
    const pass = runSchedulingPass(deps, queueId);
    await paused;
    const update = updateLease(deps, lease.id);
    await waitFor(async () => (await updatesWaiting()) > 0);
    resume();
    await Promise.all([pass, update]);

    const after = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } });
    const resources = await h.db.prisma.resource.findMany({ orderBy: { id: 'asc' } });
    expect(resources.map((r) => r.status)).toEqual(['PENDING']);
    expect(after.status).toBe('ACQUIRED');
    expect(after.resourceId).toBe(resources[0]!.id);
    expect(await logTypes(h, { leaseId: lease.id })).not.toContain('lease-reacquiring');
  });
});
