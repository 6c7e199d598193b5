import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BlueprintImplementation } from '../../src/blueprints/implementation.js';
import { createTestBlueprint, TestBlueprintControl } from '../support/test-blueprint.js';
import { describePostgres } from '../support/database.js';
import { createHarness, logTypes, unwrap, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A pass sends its last grant write together with its commit (PassGrants.finish). A resource that
// moves on after the pass chose it and before that write (here: drained, from another connection,
// while the pass asks the blueprint about it) is not written to: the lease stays PENDING, and the
// pass's job must run again and serve it elsewhere. PostgreSQL only: on PGlite's one connection
// the drain would wait for the pass.

describePostgres('a pass whose grant write finds its resource gone', () => {
  let h: Harness;
  let drainDuringPass: ((resourceId: number) => Promise<void>) | null = null;
  const base = createTestBlueprint(new TestBlueprintControl(), 'racing');
  const racing: BlueprintImplementation = {
    ...base,
    async canAcquireLeaseOn(blueprint, resource, lease, queries) {
      const drain = drainDuringPass;
      drainDuringPass = null;
      await drain?.(resource.id);
      return base.canAcquireLeaseOn(blueprint, resource, lease, queries);
    },
  };
  let stopWorker: () => Promise<void>;
  beforeAll(async () => {
    h = await createHarness('postgresql', { implementations: [racing] });
    stopWorker = h.services.worker.start({ concurrency: 2 }).stop;
  });
  afterAll(async () => {
    await stopWorker();
    await h.dispose();
  });

  it('runs the pass again, which grants the lease on a resource that is still there', async () => {
    const blueprint = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'racing',
        implementation: 'racing',
        resourceType: 'race',
        config: { maxResources: 2 },
      }),
    );
    const resource = (box: number) =>
      h.db.prisma.resource.create({
        data: {
          blueprintId: blueprint.id,
          type: 'race',
          name: `racing-${box}`,
          attributes: { box },
          status: 'ACTIVE',
          activatedAt: new Date(),
        },
      });
    const first = await resource(0);
    const second = await resource(1);
    let drained: number | null = null;
    drainDuringPass = async (resourceId) => {
      drained = resourceId;
      await h.db.prisma.resource.update({ where: { id: resourceId }, data: { drainingAt: new Date() } });
    };

    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'race' }));
    await waitFor(
      async () => (await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).status === 'ACTIVE',
      15_000,
    );

    expect(drained).not.toBeNull();
    const granted = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } });
    const other = drained === first.id ? second.id : first.id;
    expect(granted.resourceId).toBe(other);
    // Granted once: the write that found its resource drained wrote nothing of the grant.
    expect((await logTypes(h, { leaseId: lease.id })).filter((type) => type === 'lease-activated')).toHaveLength(1);
    expect(
      await h.db.prisma.lease.count({ where: { resourceId: drained!, status: { in: ['ACQUIRED', 'ACTIVE'] } } }),
    ).toBe(0);
  });
});
