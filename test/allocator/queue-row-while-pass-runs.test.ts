import { afterAll, beforeAll, expect, it } from 'vitest';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describePostgres } from '../support/database.js';
import { bareAllocatorDeps, createHarness, queueIdOf, unwrap, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A pass holds its type's queue row updated (its turn) until it commits, and may run long when it
// builds. A request that looks for the row, to make it for the type's first lease, must not wait
// for that pass: six first leases requested at once, with a worker's pass stopped inside its
// build, once waited for it, and the pass for them. PostgreSQL only: the wait needs two connections.

describePostgres("a request while its type's pass runs", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 8 });
  });
  afterAll(() => h.dispose());

  /** Statements that make a queue row now waiting for a lock. */
  const queueInsertsWaiting = async () => {
    const [row] = await h.db.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'
        AND query LIKE '%INSERT INTO "ResourceTypeQueue"%'`;
    return row!.n;
  };

  it('does not wait for the pass to commit', async () => {
    unwrap(await h.services.blueprints.create(h.system, { name: 'slots', implementation: 'test', config: {} }));
    unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const queueId = await queueIdOf(h, 'test-slot');

    // The pass stops inside its transaction, after its turn, where it builds.
    const { paused, resume } = h.control.pauseNextAllocate();
    const pass = runSchedulingPass(bareAllocatorDeps(h), queueId);
    await paused;
    try {
      // A gang looks for its types' queue rows, as a type's first lease does.
      let answered = false;
      const gang = h.services.leases
        .requestGang(h.system, { parts: [{ resourceType: 'test-slot', count: 2 }] })
        .then(unwrap)
        .finally(() => (answered = true));
      await waitFor(async () => answered || (await queueInsertsWaiting()) > 0, 30_000);
      expect(answered, 'the gang request waited for the pass').toBe(true);
      expect((await gang).map((lease) => lease.status)).toEqual(['PENDING', 'PENDING']);
    } finally {
      resume();
      await pass;
    }
  });
});
