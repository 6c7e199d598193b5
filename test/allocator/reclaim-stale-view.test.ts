import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { allocateLease } from '../../src/allocator/allocate.js';
import { allocationView } from '../../src/allocator/allocation-view.js';
import { inUpdateTransaction } from '../../src/allocator/transaction.js';
import { describeEachDatabase } from '../support/database.js';
import { bareAllocatorDeps, createHarness, logTypes, unwrap, type Harness } from '../support/allocator-harness.js';

// A pass reads its view of the pool first and reclaims later, in statements of their own: a box
// that opened in between is idle in the database but was never among the lease's candidates. The
// lease must not reclaim a resource it could use (seen as one box too many built for a mystery-box
// blueprint when an opening raced a pass).

describeEachDatabase('reclaim after the view was read', (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  beforeEach(() => h.reset());
  afterAll(() => h.dispose());

  it('leaves a resource that opened since the view alone when the lease could use it', async () => {
    // One box at most, so that the lease cannot build and goes on to reclaim.
    const bp = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'boxes',
        implementation: 'test',
        config: { mysteryBox: true, maxResources: 1 },
      }),
    );
    const lease = unwrap(
      await h.services.leases.request(h.system, { resourceType: 'test-slot', attributes: { minSize: 3 } }),
    );
    const box = await h.db.prisma.resource.create({
      data: { blueprintId: bp.id, type: 'test-slot', name: 'boxes-0', attributes: { box: 0 }, status: 'PENDING' },
    });
    const deps = bareAllocatorDeps(h);

    const after = await inUpdateTransaction(deps, async (ctx) => {
      const view = await allocationView(ctx, lease);
      // The box opens (big enough for the lease) after the view and before the reclaim's look.
      await ctx.tx.$executeRaw`
        UPDATE "Resource" SET status = 'ACTIVE', attributes = '{"box":0,"size":4}'::jsonb,
          "activatedAt" = now() - interval '1 minute'
        WHERE id = ${box.id}`;
      return allocateLease(ctx, lease, view);
    });

    expect(after.status).toBe('PENDING');
    expect((after.blocker as { reason: string } | null)?.reason).not.toBe('waiting-for-reclaim');
    expect(await logTypes(h, { leaseId: lease.id })).not.toContain('reclaim-requested');
    expect(await h.db.prisma.command.count({ where: { kind: 'RECLAIM' } })).toBe(0);
    expect((await h.db.prisma.resource.findUniqueOrThrow({ where: { id: box.id } })).status).toBe('ACTIVE');
  });
});
